"""One watch's candidates in one tick: page through them from the cursor, decide, advance.

The cursor (``watcher.store.cursors``) passes only runs whose side effects all succeeded; it stops
before a run that must be retried. With ``ha``, no write at all (not even the cursor) happens once
the lock is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from mlflow.entities import Run
from mlflow.entities.model_registry import RegisteredModel

from watcher.engine.report import WatchReport
from watcher.engine.runs import decide_page
from watcher.engine.session import Session, WatchContext
from watcher.engine.verdicts import RunVerdict
from watcher.obs.logs import get_logger
from watcher.store import registry
from watcher.store.cursors import read_cursor, save_cursor
from watcher.store.runs import is_candidate
from watcher.store.search import SearchSupport, candidate_pages

log = get_logger("watcher.engine")


def reconcile_watch(ctx: WatchContext, model: RegisteredModel, session: Session, report: WatchReport) -> None:
    """Decide every undecided candidate of the watch since its cursor, then move the cursor."""
    experiment_id = session.experiments.find(ctx.client, ctx.watch.experiment)
    if experiment_id is None:
        first = ctx.watch.experiment not in session.warned_missing
        session.warned_missing.add(ctx.watch.experiment)
        (log.warning if first else log.debug)("experiment_missing", hint="polling goes on; picked up once created")
        return
    ctx = replace(ctx, aliases=registry.aliases_of(model),
                  end_times=session.end_times.setdefault(ctx.watch.model_name, {}))
    _drain(ctx, experiment_id, read_cursor(registry.tags_of(model), experiment_id), session.search, report)


def _drain(ctx: WatchContext, experiment_id: str, cursor: int, search: SearchSupport, report: WatchReport) -> None:
    """Page through the candidates from ``cursor`` (minus the overlap), deciding each page, moving the cursor."""
    config, leading = ctx.config, ctx.leading
    since = max(0, cursor - int(config.cursor_overlap_seconds * 1000))
    advanced = cursor
    for page in candidate_pages(ctx.client, experiment_id, since, config.page_size, search, ctx.watch.run_filter):
        todo = [run for run in page if is_candidate(run)]
        if todo and not leading():
            return  # the lock is gone: no write at all, not even the cursor
        if ctx.stop.is_set():
            break
        decided = decide_page(ctx, todo, report)
        if decided.staging is not None:  # the next page sees the alias where this one left it
            ctx = replace(ctx, aliases={**ctx.aliases, decided.staging.alias: decided.staging.version})
        advanced, blocked = _passed(page, {v.run_id: v for v in decided.verdicts}, advanced)
        if blocked:
            if leading():
                _save(ctx, experiment_id, cursor, advanced)
            return
        if advanced > cursor and not leading():
            return
        cursor = _save(ctx, experiment_id, cursor, advanced)
    if leading():
        _save(ctx, experiment_id, cursor, advanced)


def _passed(page: Sequence[Run], verdicts: Mapping[str, RunVerdict], advanced: int) -> tuple[int, bool]:
    """The cursor past the page's runs up to the first one not settled (whose side effects did not
    all succeed); True when it stopped there."""
    for run in page:
        verdict = verdicts.get(run.info.run_id)
        if verdict is not None and not verdict.settled:
            return advanced, True
        advanced = max(advanced, run.info.end_time or 0)
    return advanced, False


def _save(ctx: WatchContext, experiment_id: str, old: int, new: int) -> int:
    if new > old:
        log.debug("cursor_advanced", experiment_id=experiment_id, end_time=new)
    return save_cursor(ctx.client, ctx.watch.model_name, experiment_id, old, new)
