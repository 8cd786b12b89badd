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
its reason, so one poisoned run cannot block a watch forever. A watch that fails on its own (its
experiment cannot be read, its gates raise, its registry writes fail: ``watcher.engine.bulkheads``)
says so in its report (``failure``) and the other watches go on; the daemon then holds it out and
retries it on its own backoff (``watch_failed``, ``watcher.service.bulkheads``).

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
from functools import partial

from mlflow import MlflowClient
from structlog.contextvars import bound_contextvars

from handlers.base import GATE_RAISED
from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import approved
from watcher.engine.bulkheads import read_fleet, resolve
from watcher.engine.production import Handoff, ProductionAids, reconcile_production
from watcher.engine.report import TickReport, WatchReport
from watcher.engine.session import Leader, Session, WatchContext, always
from watcher.engine.snapshot import Snapshot, snapshot
from watcher.engine.watch import reconcile_watch
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store.errors import is_unreachable
from watcher.store.migration import migrate_legacy
from watcher.store.registry import CrashHook, ensure_registered_model, get_model, no_crash, tags_of

log = get_logger("watcher.engine")


@dataclass(frozen=True)
class TickOptions:
    """How the daemon runs a tick; the defaults are ``once``'s (every configured watch, scored inline)."""

    stop: threading.Event = field(default_factory=threading.Event)
    """Set at shutdown: the tick stops between watches and between runs."""
    scorer: Handoff | None = None
    """Hands a production move that needs scoring to the scoring worker (None scores inline)."""
    watches: Sequence[WatchConfig] | None = None
    """The effective watch set (configured and discovered); None: ``config.watches``."""
    scan: bool = True
    """False (a run event for these watches) skips the fleet search for experiments with work:
    each watch searches its own runs straight away."""
    asked: Callable[[str], bool] | None = None
    """``asked(experiment)`` (the daemon's run events) is True when a run of that experiment
    finished after the fleet was read: its watch then searches even though the snapshot saw
    nothing, so a run event never waits for the tick in hand."""


def reconcile_once(client: MlflowClient, config: WatcherConfig, *, session: Session | None = None,
                   now: float | None = None, crash: CrashHook = no_crash, leader: Leader | None = None,
                   options: TickOptions | None = None) -> TickReport:
    """One full pass over every watch. ``now`` is epoch seconds (injected by tests).

    ``leader`` (the ``ha`` block) gates each watch on its lock; ``crash`` is called at the named
    crash points (tests); ``options`` are the daemon's (:class:`TickOptions`).
    """
    session = session or Session()
    options = options or TickOptions()
    watches = list(config.watches if options.watches is None else options.watches)
    report = TickReport()
    try:
        readable, failed = resolve(client, watches, session.experiments)
        snap, unread = read_fleet(lambda part: snapshot(client, config, part, session.experiments, session.search,
                                                        session.audit, scan=options.scan, models=session.models),
                                 readable)
    except Exception as exc:  # noqa: BLE001 - the fleet read failed: every watch failed with it
        _fleet_read_failed(report, watches, exc)
        return report
    report.watches.extend([*failed, *unread])  # failed on their own: the other watches go on
    unread_keys = {(r.experiment, r.model_name) for r in unread}
    watches = [w for w in readable if (w.experiment, w.model_name) not in unread_keys]
    report.snapshot = snap
    for watch in watches:
        if options.stop.is_set():
            report.stopped_early = True
            break
        wr = session.quiet.quiet(client, watch, snap, asked=options.asked, ha=leader is not None)
        if wr is None:  # not quiet (its last visit did something, or what it reads changed): visited
            ctx = WatchContext(client, config, watch, crash, _holds(leader, watch.model_name), options.stop)
            wr = session.quiet.visited(watch, partial(_visit, ctx, snap, session, leader, options, now))
        wr.experiment_id = snap.experiment_ids.get(watch.experiment)
        report.watches.append(wr)
    report.stopped_early = report.stopped_early or options.stop.is_set()
    return report


def _visit(ctx: WatchContext, snap: Snapshot, session: Session, leader: Leader | None, options: TickOptions,
           now: float | None) -> WatchReport:
    """One watch, when this replica holds its lock (always without ``ha``): what it did."""
    watch = ctx.watch
    wr = WatchReport(watch.model_name, watch.experiment)
    if leader is None:
        metrics.set_leader(watch.model_name, True)
    elif not leader.acquire(watch.model_name):
        wr.standby = True
        return wr
    with bound_contextvars(model_name=watch.model_name, experiment=watch.experiment):
        try:
            _reconcile(ctx, snap, session, wr, leader is not None, options, now)
        except Exception as exc:  # noqa: BLE001 - one failing watch never stops the loop
            _watch_failed(wr, exc)
    return wr


def _mark_failure(wr: WatchReport, errors_before: int, rejected_before: int) -> None:
    """The watch failed on its own when a run's registry writes failed (counted on the run) or a gate raised."""
    raised = [f"run {run_id}: {reason}" for run_id, reason in wr.rejected[rejected_before:] if GATE_RAISED in reason]
    if len(wr.errors) > errors_before or raised:
        wr.failure, wr.failure_kind = [*wr.errors[errors_before:], *raised][-1], "error"


def _reconcile(ctx: WatchContext, snap: Snapshot, session: Session, wr: WatchReport, ha: bool,
               options: TickOptions, now: float | None) -> None:
    """One watch: its candidates when it has any (or a run event came since the snapshot), then its production step."""
    client, config, watch = ctx.client, ctx.config, ctx.watch
    model = snap.models.get(watch.model_name)
    if model is None:
        model = ensure_registered_model(client, watch.model_name)  # created (or refused: a prompt)
    if snap.has_candidates(watch) or (options.asked is not None and options.asked(watch.experiment)):
        if snap.read_again(watch.model_name, ha):  # under the lock another replica may have moved on
            model = get_model(client, watch.model_name)
        before = (len(wr.errors), len(wr.rejected))
        reconcile_watch(ctx, model, session, wr)
        _mark_failure(wr, *before)
        if wr.registered:
            session.audit.touch(watch.model_name, watch.staging_alias)  # the watcher's own staging move
    if ctx.stop.is_set() or not ctx.leading():
        return
    if (watch.model_name, watch.production_alias) not in session.migrated:
        migrate_legacy(client, config.audit_experiment, watch.model_name, tags_of(model), watch.production_alias)
        session.migrated.add((watch.model_name, watch.production_alias))
    board = approved.board_of(session, client, config) if watch.approval is not None else None
    if board is not None and approved.apply_approved(client, board, watch, config.audit_experiment):
        model = get_model(client, watch.model_name)  # production moved: the step below reads it as it is now
    reconcile_production(client, watch, model, wr, now=time.time() if now is None else now,
                         audit_experiment=config.audit_experiment,
                         aids=ProductionAids(handoff=options.scorer, cache=session.audit, board=board))


def _watch_failed(wr: WatchReport, exc: Exception) -> None:
    """The watch failed as a whole: its report says so. An outage is the fleet's (said once by the
    daemon); any other failure is the watch's own (``failure``: the daemon's bulkheads say
    ``watch_failed`` once and retry it on its own backoff)."""
    wr.errors.append(f"{type(exc).__name__}: {exc}")
    wr.poll_failed = True
    wr.unreachable = is_unreachable(exc)
    if not wr.unreachable:
        wr.failure, wr.failure_kind = wr.errors[-1], "error"


def _fleet_read_failed(report: TickReport, watches: Sequence[WatchConfig], exc: Exception) -> None:
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
        return always
    return lambda: leader.holds(model_name)
