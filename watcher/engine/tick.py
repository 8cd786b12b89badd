"""The one-tick function. ``reconcile_once`` does one full pass over every watch and returns a
report; the daemon only calls it on a schedule, and tests call it directly with time injected.

First the fleet is read in a fixed number of requests (``watcher.engine.snapshot``): every watched
model, which watched experiments hold an undecided run, the audit trail's new entries. A watch
with nothing to do then costs no request; one with work takes the per-watch path below.

Per watch with candidates: find FINISHED runs that ended at or after ``cursor - overlap`` (paged, oldest first),
skip those that already carry a decision, run the gates on the rest, register or reject, then
advance the cursor (a registered-model tag) past the runs whose side effects all succeeded.
Afterwards the production alias is reconciled (``watcher.engine.production``).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mlflow import MlflowClient
from structlog.contextvars import bound_contextvars

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.production import Handoff, reconcile_production
from watcher.engine.report import TickReport, WatchReport
from watcher.engine.snapshot import AuditCache, Snapshot, snapshot
from watcher.engine.watch import reconcile_watch
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store.errors import is_unreachable
from watcher.store.migration import migrate_legacy
from watcher.store.registry import CrashHook, ensure_registered_model, get_model, no_crash, tags_of
from watcher.store.search import SearchSupport

log = get_logger("watcher.engine")


class Leader(Protocol):
    """The ``ha`` lock holder as the engine sees it (``watcher.service.leader`` implements it)."""

    def acquire(self, model_name: str) -> bool:
        """Before a watch: True when this replica holds (or just took) the model's lock."""
        ...

    def holds(self, model_name: str) -> bool:
        """Right before a write: True while the model's lock is held."""
        ...


@dataclass
class Session:
    """In-memory memo kept across ticks by one process. Losing it (a restart) loses nothing."""

    experiment_ids: dict[str, str] = field(default_factory=dict)
    warned_missing: set[str] = field(default_factory=set)
    search: SearchSupport = field(default_factory=SearchSupport)
    end_times: dict[str, dict[str, int]] = field(default_factory=dict)
    """Model -> version -> its run's end time (immutable facts), so staging checks cost no request."""
    migrated: set[tuple[str, str]] = field(default_factory=set)
    """(model, alias) pairs whose legacy history tag was checked (the migration runs once per process)."""
    audit: AuditCache = field(default_factory=AuditCache)
    """The newest audit entries per (model, alias), so a settled alias costs no request."""


def reconcile_once(client: MlflowClient, config: WatcherConfig, *, session: Session | None = None,
                   now: float | None = None, stop: threading.Event | None = None,
                   crash: CrashHook = no_crash, leader: Leader | None = None,
                   scorer: Handoff | None = None,
                   watches: Sequence[WatchConfig] | None = None, scan: bool = True,
                   asked: Callable[[str], bool] | None = None) -> TickReport:
    """One full pass over every watch. ``now`` is epoch seconds (injected by tests).

    ``leader`` (the ``ha`` block) gates each watch on its lock; ``scorer`` hands a model whose
    production change needs scoring to the scoring worker (None scores inline, as ``once`` does).
    ``watches`` is the effective watch set (configured and discovered); default ``config.watches``.
    ``scan`` False (a run event for these watches) skips the fleet search for experiments with
    work: each watch searches its own runs straight away. ``asked(experiment)`` (the daemon's run
    events) is True when a run of that experiment finished after the fleet was read: its watch then
    searches even though the snapshot saw nothing, so a run event never waits for the tick in hand.
    """
    session = session or Session()
    stop = stop or threading.Event()
    watches = list(config.watches if watches is None else watches)
    report = TickReport()
    try:
        snap = snapshot(client, config, watches, session.experiment_ids, session.search, session.audit, scan=scan)
    except Exception as exc:  # noqa: BLE001 - the fleet read failed: every watch failed with it
        _all_failed(report, watches, exc)
        return report
    for watch in watches:
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
        leading = _holds(leader, watch.model_name)
        with bound_contextvars(model_name=watch.model_name, experiment=watch.experiment):
            try:
                _reconcile(client, config, watch, snap, session, wr, stop, crash, leader, leading, now, scorer,
                           asked)
            except Exception as exc:  # noqa: BLE001 - one failing watch never stops the loop
                _failed(wr, exc)
    report.stopped_early = report.stopped_early or stop.is_set()
    return report


def _reconcile(client: MlflowClient, config: WatcherConfig, watch: WatchConfig, snap: Snapshot, session: Session,
               wr: WatchReport, stop: threading.Event, crash: CrashHook, leader: Leader | None,
               leading: Callable[[], bool], now: float | None, scorer: Handoff | None,
               asked: Callable[[str], bool] | None = None) -> None:
    """One watch: its candidates when it has any (or a run event came since the snapshot), then its production step."""
    model = snap.models.get(watch.model_name)
    if model is None:
        model = ensure_registered_model(client, watch.model_name)  # created (or refused: a prompt)
    if snap.has_candidates(watch) or (asked is not None and asked(watch.experiment)):
        if leader is not None:
            model = get_model(client, watch.model_name)  # read again under the lock: another replica may have moved on
        reconcile_watch(client, config, watch, model, session, wr, stop, crash, leading)
        if wr.registered:
            session.audit.touch(watch.model_name, watch.staging_alias)  # the watcher's own staging move
    if stop.is_set() or not leading():
        return
    if (watch.model_name, watch.production_alias) not in session.migrated:
        migrate_legacy(client, config.audit_experiment, watch.model_name, tags_of(model), watch.production_alias)
        session.migrated.add((watch.model_name, watch.production_alias))
    reconcile_production(client, watch, model, wr, now=time.time() if now is None else now,
                         audit_experiment=config.audit_experiment, handoff=scorer, cache=session.audit)


def _failed(wr: WatchReport, exc: Exception) -> None:
    wr.errors.append(f"{type(exc).__name__}: {exc}")
    wr.poll_failed = True
    wr.unreachable = is_unreachable(exc)
    # an outage is reported once by the daemon (tracking_server_unreachable), not per watch
    (log.debug if wr.unreachable else log.error)("watch_failed", error=str(exc), error_type=type(exc).__name__)


def _all_failed(report: TickReport, watches: Sequence[WatchConfig], exc: Exception) -> None:
    """The fleet read failed: every watch failed with it (an outage is said once by the daemon)."""
    for watch in watches:
        wr = WatchReport(watch.model_name, watch.experiment, poll_failed=True, unreachable=is_unreachable(exc),
                         errors=[f"{type(exc).__name__}: {exc}"])
        report.watches.append(wr)
    if not is_unreachable(exc):
        log.error("fleet_read_failed", error=str(exc), error_type=type(exc).__name__)


def _holds(leader: Leader | None, model_name: str) -> Callable[[], bool]:
    """The check before each write: the lock is still held (always true without ``ha``)."""
    if leader is None:
        return _always
    return lambda: leader.holds(model_name)


def _always() -> bool:
    return True
