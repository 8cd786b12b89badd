"""One watch's candidates in one tick: page through them from the cursor, decide, advance.

The cursor (``watcher.store.cursors``) passes only runs whose side effects all succeeded; it stops
before a run that must be retried. With ``ha``, no write at all (not even the cursor) happens once
the lock is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.report import WatchReport
from watcher.engine.runs import WatchTick, decide_page
from watcher.obs.logs import get_logger
from watcher.store import experiments, registry
from watcher.store.cursors import read_cursor, save_cursor
from watcher.store.registry import CrashHook
from watcher.store.runs import is_candidate
from watcher.store.search import candidate_pages

if TYPE_CHECKING:
    from watcher.engine.tick import Session

log = get_logger("watcher.engine")


def reconcile_watch(client: MlflowClient, config: WatcherConfig, watch: WatchConfig, model: RegisteredModel,
                    session: Session, wr: WatchReport, stop: threading.Event, crash: CrashHook,
                    leading: Callable[[], bool]) -> None:
    """Decide every undecided candidate of ``watch`` since its cursor, then move the cursor."""
    experiment_id = _experiment_id(client, watch.experiment, session)
    if experiment_id is None:
        first = watch.experiment not in session.warned_missing
        session.warned_missing.add(watch.experiment)
        (log.warning if first else log.debug)("experiment_missing", hint="polling goes on; picked up once created")
        return
    tick = WatchTick(client, watch, wr, crash, registry.aliases_of(model), config.max_run_attempts,
                     session.end_times.setdefault(watch.model_name, {}),
                     audit_experiment=config.audit_experiment, leading=leading, stop=stop, workers=config.workers)
    cursor = read_cursor(registry.tags_of(model), experiment_id)
    since = max(0, cursor - int(config.cursor_overlap_seconds * 1000))
    advanced = cursor
    for page in candidate_pages(client, experiment_id, since, config.page_size, session.search, watch.run_filter):
        todo = [run for run in page if is_candidate(run)]
        if todo and not leading():
            return  # the lock is gone: no write at all, not even the cursor
        if stop.is_set():
            break
        outcomes = {o.run.info.run_id: o for o in decide_page(tick, todo)}
        for run in page:  # the cursor passes only runs whose side effects all succeeded
            outcome = outcomes.get(run.info.run_id)
            if outcome is not None and (outcome.failed or not outcome.decided):
                if leading():
                    _save(client, watch.model_name, experiment_id, cursor, advanced)
                return
            advanced = max(advanced, run.info.end_time or 0)
        if advanced > cursor and not leading():
            return
        cursor = _save(client, watch.model_name, experiment_id, cursor, advanced)
    if leading():
        _save(client, watch.model_name, experiment_id, cursor, advanced)


def _experiment_id(client: MlflowClient, name: str, session: Session) -> str | None:
    if name not in session.experiment_ids:
        found = experiments.find(client, name)
        if found is None:
            return None
        session.experiment_ids[name] = found
    return session.experiment_ids[name]


def _save(client: MlflowClient, model_name: str, experiment_id: str, old: int, new: int) -> int:
    if new > old:
        log.debug("cursor_advanced", experiment_id=experiment_id, end_time=new)
    return save_cursor(client, model_name, experiment_id, old, new)
