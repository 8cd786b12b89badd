"""The one-tick function. ``reconcile_once`` does one full pass over every watch and returns a
report; the daemon only calls it on a schedule, and tests call it directly with time injected.

Per watch: find FINISHED runs that ended at or after ``cursor - overlap`` (paged, oldest first),
skip those that already carry a decision, run the gates on the rest, register or reject, then
advance the cursor (a registered-model tag) past the runs whose side effects all succeeded.
Afterwards the production alias is reconciled (history and scoring, ``watcher.production``).

Errors are classified: a gate's exception is a rejection; an unreachable server fails the whole
watch (an outage, reported once by the daemon; no run is blamed); any other failure of one run is
a ``run_failed`` event, counted on the run (``watcher.attempts``, so restarts keep the count) and
retried next tick, and after ``max_run_attempts`` the run is decided ``error`` with the error as
its reason, so one poisoned run cannot block a watch forever; a failing watch is a ``watch_failed``
event and the other watches go on.

With a ``leader`` (the ``ha`` block), a watch is acted on only while this replica holds the
model's lock: checked before the watch, before each undecided run and before each cursor or
production write; a standby skips the watch without per-run events.

Only ``KeyboardInterrupt``/``SystemExit`` (and the tests' ``SimulatedCrash``, a ``BaseException``)
propagate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from structlog.contextvars import bound_contextvars

from handlers import registration as reg
from watcher import metrics, state
from watcher.client import PROMPT_TAG
from watcher.config import WatchConfig, WatcherConfig
from watcher.errors import is_unreachable
from watcher.logs import get_logger
from watcher.production import reconcile_production
from watcher.report import TickReport, WatchReport
from watcher.runs import WatchTick, decide_page
from watcher.search import SearchSupport, candidate_pages

if TYPE_CHECKING:
    from watcher.leader import Leader

log = get_logger("watcher.engine")
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"


@dataclass
class Session:
    """In-memory memo kept across ticks by one process. Losing it (a restart) loses nothing."""

    experiment_ids: dict[str, str] = field(default_factory=dict)
    warned_missing: set[str] = field(default_factory=set)
    search: SearchSupport = field(default_factory=SearchSupport)
    end_times: dict[str, dict[str, int]] = field(default_factory=dict)
    """Model -> version -> its run's end time (immutable facts), so staging checks cost no request."""


def reconcile_once(client: MlflowClient, config: WatcherConfig, *, session: Session | None = None,
                   now: float | None = None, stop: threading.Event | None = None,
                   crash: reg.CrashHook = reg.no_crash, leader: Leader | None = None,
                   scorer: Callable[[str], None] | None = None) -> TickReport:
    """One full pass over every watch. ``now`` is epoch seconds (injected by tests).

    ``leader`` (the ``ha`` block) gates each watch on its lock; ``scorer`` hands a model whose
    production change needs scoring to the scoring worker (None scores inline, as ``once`` does).
    """
    session = session or Session()
    stop = stop or threading.Event()
    report = TickReport()
    for watch in config.watches:
        if stop.is_set():
            report.stopped_early = True
            break
        wr = WatchReport(watch.model_name, watch.experiment)
        report.watches.append(wr)
        if leader is None:
            metrics.set_leader(watch.model_name, True)
        elif not leader.acquire(watch.model_name):
            wr.standby = True
            continue
        leading = (lambda name=watch.model_name: leader.holds(name)) if leader is not None else _always
        with bound_contextvars(model_name=watch.model_name, experiment=watch.experiment):
            try:
                model = ensure_registered_model(client, watch.model_name)
                _reconcile_watch(client, config, watch, model, session, wr, stop, crash, leading)
                if stop.is_set():
                    break
                if leading():
                    reconcile_production(client, watch, model, wr, now=time.time() if now is None else now,
                                         audit_experiment=config.audit_experiment, handoff=scorer)
            except Exception as exc:  # noqa: BLE001 - one failing watch never stops the loop
                wr.errors.append(f"{type(exc).__name__}: {exc}")
                wr.poll_failed = True
                wr.unreachable = is_unreachable(exc)
                # an outage is reported once by the daemon (tracking_server_unreachable), not per watch
                (log.debug if wr.unreachable else log.error)("watch_failed", error=str(exc),
                                                             error_type=type(exc).__name__)
    report.stopped_early = report.stopped_early or stop.is_set()
    return report


def _always() -> bool:
    return True


def _experiment_id(client: MlflowClient, name: str, session: Session) -> str | None:
    if name not in session.experiment_ids:
        experiment = client.get_experiment_by_name(name)
        if experiment is None or experiment.lifecycle_stage != "active":
            return None
        session.experiment_ids[name] = experiment.experiment_id
    return session.experiment_ids[name]


def ensure_registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """Get the registered model, creating it when missing; a prompt of that name is an error."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != RESOURCE_DOES_NOT_EXIST:
            raise
    else:
        if (model.tags or {}).get(PROMPT_TAG, "").lower() == "true":
            raise ValueError(f"'{name}' is an MLflow prompt, not a model; the watcher will not write to it")
        return model
    try:
        client.create_registered_model(name, description="Managed by registry-watcher")
        log.info("registered_model_created")
    except MlflowException as exc:
        if "ALREADY_EXISTS" not in str(exc.error_code):
            raise
    return client.get_registered_model(name)


def _reconcile_watch(client: MlflowClient, config: WatcherConfig, watch: WatchConfig, model: RegisteredModel,
                     session: Session, wr: WatchReport, stop: threading.Event, crash: reg.CrashHook,
                     leading: Callable[[], bool] = _always) -> None:
    experiment_id = _experiment_id(client, watch.experiment, session)
    if experiment_id is None:
        first = watch.experiment not in session.warned_missing
        session.warned_missing.add(watch.experiment)
        (log.warning if first else log.debug)("experiment_missing", hint="polling goes on; picked up once created")
        return
    tick = WatchTick(client, watch, wr, crash, {k: str(v) for k, v in (model.aliases or {}).items()},
                     config.max_run_attempts, session.end_times.setdefault(watch.model_name, {}),
                     audit_experiment=config.audit_experiment, leading=leading, stop=stop, workers=config.workers)
    cursor = state.read_cursor(model.tags, experiment_id)
    since = max(0, cursor - int(config.cursor_overlap_seconds * 1000))
    advanced = cursor
    for page in candidate_pages(client, experiment_id, since, config.page_size, session.search, watch.run_filter):
        todo = [run for run in page if _undecided(run)]
        if todo and not leading():
            return  # the lock is gone: no write at all, not even the cursor
        if stop.is_set():
            break
        outcomes = {o.run.info.run_id: o for o in decide_page(tick, todo)}
        for run in page:  # the cursor passes only runs whose side effects all succeeded
            outcome = outcomes.get(run.info.run_id)
            if outcome is not None and (outcome.failed or not outcome.decided):
                if leading():
                    _save_cursor(client, watch.model_name, experiment_id, cursor, advanced)
                return
            advanced = max(advanced, run.info.end_time or 0)
        if advanced > cursor and not leading():
            return
        cursor = _save_cursor(client, watch.model_name, experiment_id, cursor, advanced)
    if leading():
        _save_cursor(client, watch.model_name, experiment_id, cursor, advanced)


def _undecided(run: Run) -> bool:
    """A candidate: no decision yet, and not one of the watcher's own scoring or audit runs."""
    return state.DECISION not in run.data.tags and run.data.tags.get(state.KIND) not in ("scoring", "audit")


def _save_cursor(client: MlflowClient, model_name: str, experiment_id: str, old: int, new: int) -> int:
    if new > old:
        client.set_registered_model_tag(model_name, state.cursor_key(experiment_id),
                                        state.dump({"end_time": new, "updated_at": state.now_iso()}))
        log.debug("cursor_advanced", experiment_id=experiment_id, end_time=new)
    return max(old, new)
