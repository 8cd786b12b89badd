"""Deciding the runs of one page, in three phases, so a burst drains in parallel.

1. ``check`` (a bounded thread pool, ``workers`` at a time): the model is resolved and the gates
   run; a rejected run is decided at once (decision tags, and on a version the training job
   registered itself). ``register`` (the tick's thread, in run order as checks complete): a
   passing run's version is found (one lookup for the whole page) or created with its tags, so
   version numbers follow the runs' end times as they would one at a time.
2. ``stage`` (the tick's thread): the staging alias moves once, forward only, to the newest
   passing run of the page; not once per run.
3. ``finish`` (the pool again): each passing run's decision tags, the commit marker, written
   after the alias, so a crash before it is repaired by the next tick without a duplicate.

A run that fails (not its own fault) is counted on the run (``watcher.attempts``) and retried
next tick; after ``max_run_attempts`` it is decided ``error``. An unreachable server raises: the
watch fails and the daemon backs off. With ``ha``, each write is preceded by a lock check.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from structlog.contextvars import bound_contextvars

from handlers.base import GateContext, GateResult
from handlers.gates import evaluate, rejection_reason
from watcher.config import DEFAULT_AUDIT_EXPERIMENT, ChampionGate, WatchConfig
from watcher.engine.aliases import begin_own_move
from watcher.engine.lineage import gates_json, version_tags
from watcher.engine.report import WatchReport
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store import attempts, audit, registry
from watcher.store import runs as run_store
from watcher.store.errors import is_unreachable
from watcher.store.models import ModelRef, resolve_model
from watcher.store.registry import CrashHook

log = get_logger("watcher.engine")
T = TypeVar("T")
R = TypeVar("R")


def _always() -> bool:
    return True


@dataclass
class WatchTick:
    """What one tick of one watch carries from run to run (never outlives the tick)."""

    client: MlflowClient
    watch: WatchConfig
    report: WatchReport
    crash: CrashHook
    aliases: dict[str, str]
    max_attempts: int
    end_times: dict[str, int] = field(default_factory=dict)
    """Version -> run end time (the session's, kept across ticks), so staging costs no extra read."""
    audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT
    """Where the watcher's own staging moves are recorded (so staging_policy can tell them apart)."""
    leading: Callable[[], bool] = _always
    """With ``ha``: whether this replica still holds the model's lock (checked before writes)."""
    stop: threading.Event = field(default_factory=threading.Event)
    workers: int = 1
    champion: tuple[str | None, dict[str, float] | None] = (None, None)
    """(production version, its run metrics), read once per page that has candidates."""
    known: dict[str, ModelVersion | None] = field(default_factory=dict)
    """Run id -> its existing version, read for the whole page in one request."""
    lookup: Future[dict[str, ModelVersion | None]] | None = None
    """That request in flight: it runs while the gates do (:meth:`versions` waits for it)."""

    def versions(self) -> dict[str, ModelVersion | None]:
        """Run id -> existing version for the page; empty when the lookup failed, so each run
        looks itself up (and meets the error again, classified as ever)."""
        lookup = self.lookup
        if lookup is not None:
            try:
                self.known = lookup.result()
            except Exception as exc:  # noqa: BLE001 - each run's own lookup raises it where it is classified
                log.debug("version_lookup_failed", error=f"{type(exc).__name__}: {exc}")
                self.known = {}
            self.lookup = None
        return self.known


@dataclass
class Outcome:
    """What phase 1 made of one run."""

    run: Run
    decided: bool = False
    """True when the run carries its decision (rejected or error) or no longer needs one now."""
    failed: bool = False
    """True when the run must be retried next tick (the cursor stops before it)."""
    results: list[GateResult] = field(default_factory=list)
    model: ModelRef | None = None
    version: ModelVersion | None = None
    created: bool = False


def decide_page(tick: WatchTick, runs: Sequence[Run]) -> list[Outcome]:
    """Decide ``runs`` (undecided candidates, oldest first); outcomes in the same order."""
    if not runs:
        return []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup") as pool:  # off the path to staging
        tick.lookup = pool.submit(contextvars.copy_context().run, registry.versions_by_run, tick.client,
                                  tick.watch.model_name, [run.info.run_id for run in runs])
        tick.champion = _champion(tick)
        outcomes = _ordered(tick, lambda run: check(tick, run), runs, then=lambda outcome: register(tick, outcome))
        tick.versions()
    passing = [o for o in outcomes if o.version is not None and not o.failed]
    if not passing:
        return outcomes
    if not tick.leading():
        for outcome in passing:
            outcome.failed = True  # the lock is gone: no alias, no decision; the new leader repairs
        return outcomes
    newest = max(passing, key=lambda o: (o.run.info.end_time or 0, o.run.info.start_time or 0))
    previous = stage(tick, newest)
    _ordered(tick, lambda o: finish(tick, o, previous if o is newest else None), passing)
    for outcome in passing:
        if outcome.decided:
            assert outcome.version is not None
            tick.report.registered.append((outcome.run.info.run_id, str(outcome.version.version)))
            metrics.record_decision(tick.watch.model_name, "registered")
    return outcomes


def _ordered(tick: WatchTick, fn: Callable[[T], R], items: Sequence[T],
             then: Callable[[R], object] | None = None) -> list[R]:
    """``fn`` over ``items`` on up to ``tick.workers`` threads (each with the caller's log context);
    ``then`` runs on the calling thread on each result, in item order, as soon as it is ready."""
    results: list[R] = []
    if tick.workers <= 1 or len(items) <= 1:
        for item in items:
            results.append(fn(item))
            if then is not None:
                then(results[-1])
        return results
    with ThreadPoolExecutor(max_workers=min(tick.workers, len(items)), thread_name_prefix="decide") as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        for future in futures:
            results.append(future.result())
            if then is not None:
                then(results[-1])
    return results


def _champion(tick: WatchTick) -> tuple[str | None, dict[str, float] | None]:
    """The production version and its run's metrics, when a champion gate needs them."""
    watch = tick.watch
    version = tick.aliases.get(watch.production_alias)
    if not version or not any(isinstance(g, ChampionGate) for g in watch.gates):
        return None, None
    mv = registry.get_version(tick.client, watch.model_name, version)
    return version, run_store.run_metrics(tick.client, mv.run_id)


def check(tick: WatchTick, run: Run) -> Outcome:
    """Phase 1 on the pool: resolve the model and run the gates; a rejected run is decided here."""
    client, watch, wr, crash = tick.client, tick.watch, tick.report, tick.crash
    run_id = run.info.run_id
    outcome = Outcome(run)
    if tick.stop.is_set() or not tick.leading():
        outcome.failed = True  # shutting down, or the lock is gone: left for the next tick
        return outcome
    with bound_contextvars(run_id=run_id):
        try:
            outcome.model = resolve_model(client, run, watch.artifact_path)
            ctx = GateContext(run=run, watch=watch, model=outcome.model,
                              champion_metrics=tick.champion[1], champion_version=tick.champion[0])
            outcome.results = evaluate(ctx, watch.gates)
            if all(r.passed for r in outcome.results) and outcome.model is not None:
                return outcome  # registered on the tick's thread, in run order
            reason = rejection_reason(outcome.results)
            verdicts = gates_json(outcome.results)
            existing = registry.tag_rejected_version(client, watch.model_name, run_id, reason, verdicts, crash,
                                                     tick.versions())
            run_store.record_decision(client, run_id, "rejected", verdicts, reason=reason, crash=crash,
                                 model_name=watch.model_name)
            failed = [r.gate for r in outcome.results if not r.passed]
            log.warning("run_rejected", reason=reason, failed_gates=failed, run_name=run.info.run_name,
                        existing_version=existing)
            wr.rejected.append((run_id, reason))
            metrics.record_decision(watch.model_name, "rejected")
            outcome.decided = True
        except Exception as exc:  # noqa: BLE001 - classified below
            _failed(tick, outcome, exc)
        return outcome


def register(tick: WatchTick, outcome: Outcome) -> None:
    """Phase 1 on the tick's thread, in run order: a passing run's version, found or created, with its tags."""
    if outcome.decided or outcome.failed or outcome.model is None:
        return
    client, watch, run = tick.client, tick.watch, outcome.run
    if not tick.leading():
        outcome.failed = True
        return
    with bound_contextvars(run_id=run.info.run_id):
        try:
            tags = version_tags(watch, run, watch.experiment, outcome.results)
            outcome.version, outcome.created = registry.find_or_create_version(
                client, watch.model_name, run.info.run_id, outcome.model.source, outcome.model.model_id, tags,
                tick.crash, tick.versions())
            repaired = [] if outcome.created else registry.ensure_version_tags(client, outcome.version, tags,
                                                                                tick.crash)
            if repaired:
                log.info("version_repaired", tags_written=sorted(repaired), version=str(outcome.version.version))
        except Exception as exc:  # noqa: BLE001 - classified below
            outcome.version = None
            _failed(tick, outcome, exc)


def _failed(tick: WatchTick, outcome: Outcome, exc: Exception) -> None:
    if is_unreachable(exc):
        raise exc  # an outage, not this run's failure: the watch fails and the daemon backs off
    outcome.decided = _count_failure(tick, outcome.run, f"{type(exc).__name__}: {exc}")
    outcome.failed = not outcome.decided


def stage(tick: WatchTick, newest: Outcome) -> str | None:
    """Phase 2: move staging (forward only) to the newest passing run; the previous version when it moved."""
    client, watch, run, version = tick.client, tick.watch, newest.run, newest.version
    assert version is not None

    def on_move(prev: str | None, new: str) -> Callable[[], object]:
        intent = begin_own_move(client, tick.audit_experiment, watch, watch.staging_alias, new, prev, "stage",
                                f"run {run.info.run_id} passed the gates")

        def moved() -> None:  # the alias request returned: said at once, then the intent is closed
            log.info("staging_alias_moved", alias=watch.staging_alias, previous_version=prev or None)
            metrics.observe_run_to_staging(time.time() - (run.info.end_time or 0) / 1000)
            audit.finish(client, intent)
        return moved

    with bound_contextvars(run_id=run.info.run_id, version=str(version.version)):
        return registry.move_alias_forward(client, watch.model_name, watch.staging_alias, version,
                                           run.info.end_time or 0, tick.aliases, tick.end_times, tick.crash,
                                           on_move=on_move)


def finish(tick: WatchTick, outcome: Outcome, previous: str | None) -> None:
    """Phase 3 for one passing run: its decision tags (the commit marker) and its canonical line."""
    client, watch, run, version = tick.client, tick.watch, outcome.run, outcome.version
    assert version is not None
    if not tick.leading():
        outcome.failed = True
        return
    with bound_contextvars(run_id=run.info.run_id, version=str(version.version)):
        try:
            run_store.record_decision(client, run.info.run_id, "registered", gates_json(outcome.results),
                                 version=str(version.version), crash=tick.crash, model_name=watch.model_name)
        except Exception as exc:  # noqa: BLE001 - the version and alias stand; the decision is retried
            _failed(tick, outcome, exc)
            outcome.decided = False  # counted, but never reported as registered
            return
        log.info("run_registered", created=outcome.created, staging_moved=previous is not None,
                 run_name=run.info.run_name, alias=watch.staging_alias if previous is not None else None)
    outcome.decided = True


def _count_failure(tick: WatchTick, run: Run, error: str) -> bool:
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
    run_store.record_decision(client, run_id, "error", gates_json([]), reason=reason, model_name=watch.model_name)
    log.error("run_errored", reason=reason, attempts=count, run_name=run.info.run_name)
    metrics.record_decision(watch.model_name, "error")
    return True
