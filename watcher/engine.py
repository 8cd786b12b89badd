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
from handlers.base import GateContext, GateResult, ModelRef
from handlers.gates import evaluate, rejection_reason
from watcher import attempts, audit, metrics, state
from watcher.client import PROMPT_TAG
from watcher.config import DEFAULT_AUDIT_EXPERIMENT, ChampionGate, WatchConfig, WatcherConfig
from watcher.errors import is_unreachable
from watcher.logs import get_logger
from watcher.production import reconcile_production
from watcher.protection import begin_own_move
from watcher.report import TickReport, WatchReport
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


@dataclass
class _WatchTick:
    """What one tick of one watch carries from run to run (never outlives the tick)."""

    client: MlflowClient
    watch: WatchConfig
    session: Session
    report: WatchReport
    crash: reg.CrashHook
    aliases: dict[str, str]
    max_attempts: int
    end_times: dict[str, int] = field(default_factory=dict)
    """Version -> run end time (the session's, kept across ticks), so staging costs no extra read."""
    champion: tuple[str | None, dict[str, float] | None] | None = None
    """(production version, its run metrics), read at most once per tick."""
    audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT
    """Where the watcher's own staging moves are recorded (so staging_policy can tell them apart)."""


def _reconcile_watch(client: MlflowClient, config: WatcherConfig, watch: WatchConfig, model: RegisteredModel,
                     session: Session, wr: WatchReport, stop: threading.Event, crash: reg.CrashHook,
                     leading: Callable[[], bool] = _always) -> None:
    experiment_id = _experiment_id(client, watch.experiment, session)
    if experiment_id is None:
        first = watch.experiment not in session.warned_missing
        session.warned_missing.add(watch.experiment)
        (log.warning if first else log.debug)("experiment_missing", hint="polling goes on; picked up once created")
        return
    tick = _WatchTick(client, watch, session, wr, crash, {k: str(v) for k, v in (model.aliases or {}).items()},
                      config.max_run_attempts, session.end_times.setdefault(watch.model_name, {}),
                      audit_experiment=config.audit_experiment)
    cursor = state.read_cursor(model.tags, experiment_id)
    since = max(0, cursor - int(config.cursor_overlap_seconds * 1000))
    advanced = cursor
    for page in candidate_pages(client, experiment_id, since, config.page_size, session.search, watch.run_filter):
        for run in page:
            undecided = state.DECISION not in run.data.tags and run.data.tags.get(state.KIND) not in ("scoring", "audit")
            if undecided and not leading():
                return  # the lock is gone: no write at all, not even the cursor
            if stop.is_set() or (undecided and not _process_run(tick, run)):
                if leading():
                    _save_cursor(client, watch.model_name, experiment_id, cursor, advanced)
                return
            advanced = max(advanced, run.info.end_time or 0)
        if advanced > cursor and not leading():
            return
        cursor = _save_cursor(client, watch.model_name, experiment_id, cursor, advanced)


def _save_cursor(client: MlflowClient, model_name: str, experiment_id: str, old: int, new: int) -> int:
    if new > old:
        client.set_registered_model_tag(model_name, state.cursor_key(experiment_id),
                                        state.dump({"end_time": new, "updated_at": state.now_iso()}))
        log.debug("cursor_advanced", experiment_id=experiment_id, end_time=new)
    return max(old, new)


def _champion(tick: _WatchTick) -> tuple[str | None, dict[str, float] | None]:
    """The production version and its run's metrics, when a champion gate needs them."""
    if tick.champion is None:
        tick.champion = (None, None)
        watch = tick.watch
        version = tick.aliases.get(watch.production_alias)
        if version and any(isinstance(g, ChampionGate) for g in watch.gates):
            mv = tick.client.get_model_version(watch.model_name, version)
            metrics = dict(tick.client.get_run(mv.run_id).data.metrics) if mv.run_id else {}
            tick.champion = (version, metrics)
    return tick.champion


def _process_run(tick: _WatchTick, run: Run) -> bool:
    """Decide one run. Returns False when it failed (the watch stops here for this tick)."""
    client, watch, session, wr, crash = tick.client, tick.watch, tick.session, tick.report, tick.crash
    run_id = run.info.run_id
    with bound_contextvars(run_id=run_id):
        try:
            champion_version, champion_metrics = _champion(tick)
            model = reg.resolve_model(client, run, watch.artifact_path)
            ctx = GateContext(run=run, watch=watch, model=model,
                              champion_metrics=champion_metrics, champion_version=champion_version)
            results = evaluate(ctx, watch.gates)
            if all(r.passed for r in results) and model is not None:
                version = _register(tick, run, model, results)
                wr.registered.append((run_id, version))
                metrics.record_decision(watch.model_name, "registered")
            else:
                reason = rejection_reason(results)
                existing = reg.tag_rejected_version(client, watch.model_name, run, results, reason, crash)
                reg.record_decision(client, run_id, "rejected", results, reason=reason, crash=crash,
                                    model_name=watch.model_name)
                failed = [r.gate for r in results if not r.passed]
                log.warning("run_rejected", reason=reason, failed_gates=failed, run_name=run.info.run_name,
                            existing_version=existing)
                wr.rejected.append((run_id, reason))
                metrics.record_decision(watch.model_name, "rejected")
            return True
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_unreachable(exc):
                raise  # an outage, not this run's failure: the watch fails and the daemon backs off
            return _count_failure(tick, run, f"{type(exc).__name__}: {exc}")


def _count_failure(tick: _WatchTick, run: Run, error: str) -> bool:
    """Count a failed attempt on the run; after ``max_run_attempts`` decide it ``error``."""
    client, watch, wr = tick.client, tick.watch, tick.report
    run_id = run.info.run_id
    wr.errors.append(f"run {run_id}: {error}")
    try:
        count = attempts.record_failure(client, run, error)
    except Exception as exc:  # noqa: BLE001 - not even the counter could be written: retry next tick
        log.error("run_failed", error=error, attempt=None, max_attempts=tick.max_attempts,
                  counter_error=f"{type(exc).__name__}: {exc}")
        return False
    log.error("run_failed", error=error, attempt=count, max_attempts=tick.max_attempts)
    if count < tick.max_attempts:
        return False
    reason = f"processing failed {count} times (max_run_attempts); last error: {error}"
    reg.record_decision(client, run_id, "error", [], reason=reason, model_name=watch.model_name)
    log.error("run_errored", reason=reason, attempts=count, run_name=run.info.run_name)
    metrics.record_decision(watch.model_name, "error")
    return True


def _register(tick: _WatchTick, run: Run, model: ModelRef, results: list[GateResult]) -> str:
    client, watch, crash = tick.client, tick.watch, tick.crash
    tags = reg.version_tags(watch, run, watch.experiment, results)
    version, created = reg.find_or_create_version(client, watch.model_name, run, model, tags, crash)
    with bound_contextvars(version=str(version.version)):
        repaired = [] if created else reg.ensure_version_tags(client, version, tags, crash)
        if repaired:
            log.info("version_repaired", tags_written=sorted(repaired))
        def on_move(prev: str | None, new: str) -> object:
            intent = begin_own_move(client, tick.audit_experiment, watch, watch.staging_alias, new, prev, "stage",
                                    f"run {run.info.run_id} passed the gates")
            return lambda: audit.finish(client, intent)

        previous = reg.move_staging(client, watch.model_name, watch.staging_alias, version,
                                    run.info.end_time or 0, tick.aliases, tick.end_times, crash, on_move=on_move)
        if previous is not None:
            log.info("staging_alias_moved", alias=watch.staging_alias, previous_version=previous or None)
            metrics.observe_run_to_staging(time.time() - (run.info.end_time or 0) / 1000)
        reg.record_decision(client, run.info.run_id, "registered", results, version=str(version.version), crash=crash,
                            model_name=watch.model_name)
        log.info("run_registered", created=created, staging_moved=previous is not None,
                 run_name=run.info.run_name, alias=watch.staging_alias if previous is not None else None)
    return str(version.version)
