"""Deciding the runs of one page, in three phases, so a burst drains in parallel.

1. ``run_gates`` (a bounded thread pool, ``workers`` at a time): the model is resolved and the gates
   run, while the page's existing versions are looked up beside them (one request). Then, in run
   order as checks complete, the lookup's answer is passed on: a rejected run is decided
   (``reject``, on the pool: decision tags, and on a version the training job registered itself);
   a passing run's version is found or created with its tags (``register``, on the tick's
   thread), so version numbers follow the runs' end times as they would one at a time. Before a
   passing run is registered, the rejections of the runs before it are waited for (a crash or an
   outage in one surfaces there, before any later run is registered); the report hears of every
   verdict in run order.
2. ``stage`` (the tick's thread, ``watcher.engine.staging``): the staging alias moves once,
   forward only, to the newest passing run of the page; not once per run.
3. ``finish`` (the pool again): each passing run's decision tags, the commit marker, written
   after the alias, so a crash before it is repaired by the next tick without a duplicate.

Each phase takes a frozen :class:`~watcher.engine.verdicts.RunVerdict` and returns a new one;
:func:`decide_page` adds each to the watch's report on the tick's thread as it comes. A run that
fails (not its own fault) is counted on the run and retried next tick; after
``max_run_attempts`` it is decided ``error``. An unreachable server raises: the watch fails and
the daemon backs off. With ``ha``, each write is preceded by a lock check.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import TypeVar

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from structlog.contextvars import bound_contextvars

from handlers.base import GateContext
from handlers.gates import evaluate, rejection_reason
from watcher.config import ChampionGate
from watcher.engine.facts import decided
from watcher.engine.lineage import gates_json, version_tags
from watcher.engine.report import WatchReport
from watcher.engine.session import WatchContext
from watcher.engine.staging import finish, stage
from watcher.engine.verdicts import Champion, PageDecision, RunVerdict, retry_or_error
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store import registry
from watcher.store import runs as run_store
from watcher.store.models import resolve_model

log = get_logger("watcher.engine")
T = TypeVar("T")
R = TypeVar("R")
Versions = dict[str, ModelVersion | None]
"""Run id -> its existing version (None: none yet), for a whole page."""


def decide_page(ctx: WatchContext, runs: Sequence[Run], report: WatchReport) -> PageDecision:
    """Decide ``runs`` (undecided candidates, oldest first): a verdict per run, in the same order."""
    if not runs:
        return PageDecision()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup") as pool:  # off the path to staging
        lookup = pool.submit(contextvars.copy_context().run, registry.versions_by_run, ctx.client,
                             ctx.watch.model_name, [run.info.run_id for run in runs])
        verdicts = _check_and_register(ctx, runs, lookup, report)
    passing = [v for v in verdicts if v.state == "versioned"]
    if not passing:
        return PageDecision(tuple(verdicts))
    if not ctx.leading():  # the lock is gone: no alias, no decision; the new leader repairs
        return PageDecision(tuple(replace(v, state="retry") if v.state == "versioned" else v for v in verdicts))
    return _stage_and_finish(ctx, verdicts, passing, report)


def _stage_and_finish(ctx: WatchContext, verdicts: Sequence[RunVerdict], passing: Sequence[RunVerdict],
                      report: WatchReport) -> PageDecision:
    """Phases 2 and 3: one staging move to the newest passing run, then every passing run's decision."""
    newest = max(passing, key=lambda v: (v.run.info.end_time or 0, v.run.info.start_time or 0))
    move = stage(ctx, newest)
    with _decide_pool(ctx, len(passing)) as workers:
        done = {v.run_id: _record(report, v) for v in
                _each(workers, lambda v: finish(ctx, v, move if v is newest else None), passing)}
    for verdict in done.values():
        if verdict.state == "registered":
            assert verdict.version is not None
            report.registered.append((verdict.run_id, str(verdict.version.version)))
            metrics.count_decision(ctx.watch.model_name, "registered")
    return PageDecision(tuple(done.get(v.run_id, v) for v in verdicts), move)


def _check_and_register(ctx: WatchContext, runs: Sequence[Run], lookup: Future[Versions],
                        report: WatchReport) -> list[RunVerdict]:
    """Phase 1: every run checked on the pool; in run order, the lookup's answer passed to the next step."""
    champion = _champion(ctx)
    known: Versions | None = None
    slots: list[RunVerdict | Future[RunVerdict]] = []
    settled = 0
    with _decide_pool(ctx, len(runs)) as workers:
        for checked in _each(workers, partial(run_gates, ctx, champion), runs):
            if known is None and checked.state in ("refused", "passed"):
                known = _versions(lookup, checked.run_id)
            if checked.state == "passed":  # the earlier runs' rejections first: a crash there stops the page
                settled = _await_earlier(slots, settled, report)
            slots.append(_next(ctx, workers, checked, known or {}))
        _await_earlier(slots, settled, report)
    if known is None:
        _versions(lookup, None)  # its failure is said even when no run needed it
    return [slot for slot in slots if isinstance(slot, RunVerdict)]


def _await_earlier(slots: list[RunVerdict | Future[RunVerdict]], settled: int, report: WatchReport) -> int:
    """Wait for the slots from ``settled`` on, in run order (a rejection's exception raised here), and
    add each to the report in that order; the new count of settled slots."""
    for index in range(settled, len(slots)):
        slot = slots[index]
        slots[index] = _record(report, slot.result() if isinstance(slot, Future) else slot)
    return len(slots)


def _next(ctx: WatchContext, workers: ThreadPoolExecutor | None, checked: RunVerdict,
          known: Versions) -> RunVerdict | Future[RunVerdict]:
    """After the check: a rejection is written (on the pool when there is one), a pass registered here;
    reported later, in run order (:func:`_await_earlier`)."""
    if checked.state == "refused":
        if workers is not None:
            return workers.submit(contextvars.copy_context().run, reject, ctx, checked, known)
        return reject(ctx, checked, known)
    if checked.state == "passed":
        return register(ctx, checked, known)
    return checked


def _record(report: WatchReport, verdict: RunVerdict) -> RunVerdict:
    """The watch's report hears of a rejection or a counted failure (on the tick's thread only)."""
    if verdict.error is not None:
        report.errors.append(f"run {verdict.run_id}: {verdict.error}")
    if verdict.state == "rejected":
        report.rejected.append((verdict.run_id, verdict.reason))
    return verdict


def _versions(lookup: Future[Versions], run_id: str | None) -> Versions:
    """The page's existing versions; empty when the lookup failed, so each run looks itself up
    (and meets the error again, classified as ever)."""
    try:
        return lookup.result()
    except Exception as exc:  # noqa: BLE001 - each run's own lookup raises it where it is classified
        with bound_contextvars(**({} if run_id is None else {"run_id": run_id})):
            log.debug("version_lookup_failed", error=f"{type(exc).__name__}: {exc}")
        return {}


@contextmanager
def _decide_pool(ctx: WatchContext, count: int) -> Iterator[ThreadPoolExecutor | None]:
    """Up to ``workers`` threads for ``count`` items; none (this thread) for one item or one worker."""
    size = min(ctx.config.workers, count)
    if size <= 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="decide") as pool:
        yield pool


def _each(workers: ThreadPoolExecutor | None, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """``fn`` over ``items``, results in item order as each is ready: on the pool (each call with the
    caller's log context), or one at a time on this thread, each only once the last was handled."""
    if workers is None:
        for item in items:
            yield fn(item)
        return
    futures = [workers.submit(contextvars.copy_context().run, fn, item) for item in items]
    for future in futures:
        yield future.result()


def _champion(ctx: WatchContext) -> Champion:
    """The production version and its run's metrics, when a champion gate needs them."""
    watch = ctx.watch
    version = ctx.aliases.get(watch.production_alias)
    if not version or not any(isinstance(g, ChampionGate) for g in watch.gates):
        return Champion()
    mv = registry.get_version(ctx.client, watch.model_name, version)
    return Champion(version, run_store.run_metrics(ctx.client, mv.run_id))


def run_gates(ctx: WatchContext, champion: Champion, run: Run) -> RunVerdict:
    """Phase 1 on the pool: resolve the model and run the gates (no write unless a failure is counted)."""
    watch = ctx.watch
    if ctx.stop.is_set() or not ctx.leading():
        return RunVerdict(run)  # shutting down, or the lock is gone: left for the next tick
    with bound_contextvars(run_id=run.info.run_id):
        try:
            model = resolve_model(ctx.client, run, watch.artifact_path)
            gate_ctx = GateContext(run=run, watch=watch, model=model, champion_metrics=champion.metrics,
                                   champion_version=champion.version)
            results = tuple(evaluate(gate_ctx, watch.gates))
        except Exception as exc:  # noqa: BLE001 - classified there
            return retry_or_error(ctx, RunVerdict(run), exc)
    passed = all(r.passed for r in results) and model is not None
    return RunVerdict(run, "passed" if passed else "refused", results=results, model=model)


def reject(ctx: WatchContext, verdict: RunVerdict, known: Versions) -> RunVerdict:
    """A run the gates refused is decided ``rejected`` (and so is its version, if one exists)."""
    client, watch, run = ctx.client, ctx.watch, verdict.run
    with bound_contextvars(run_id=run.info.run_id):
        try:
            reason = rejection_reason(list(verdict.results))
            verdicts = gates_json(verdict.results)
            existing = registry.tag_rejected_version(client, watch.model_name, run.info.run_id, reason, verdicts,
                                                     ctx.crash, known)
            written = run_store.record_decision(client, run.info.run_id, "rejected", verdicts, reason=reason,
                                                crash=ctx.crash, model_name=watch.model_name)
            decided(ctx.facts, run, written)
            log.warning("run_rejected", reason=reason, failed_gates=[r.gate for r in verdict.results if not r.passed],
                        run_name=run.info.run_name, existing_version=existing)
            metrics.count_decision(watch.model_name, "rejected")
        except Exception as exc:  # noqa: BLE001 - classified there
            return retry_or_error(ctx, verdict, exc)
    return replace(verdict, state="rejected", settled=True, reason=reason)


def register(ctx: WatchContext, verdict: RunVerdict, known: Versions) -> RunVerdict:
    """On the tick's thread, in run order: a passing run's version, found or created, with its tags."""
    client, watch, run, model = ctx.client, ctx.watch, verdict.run, verdict.model
    assert model is not None
    if not ctx.leading():
        return replace(verdict, state="retry")
    with bound_contextvars(run_id=run.info.run_id):
        try:
            tags = version_tags(watch, run, watch.experiment, verdict.results)
            version, created = registry.find_or_create_version(client, watch.model_name, run.info.run_id, model.source,
                                                               model.model_id, tags, ctx.crash, known)
            repaired = [] if created else registry.ensure_version_tags(client, version, tags, ctx.crash)
            if repaired:
                log.info("version_repaired", tags_written=sorted(repaired), version=str(version.version))
        except Exception as exc:  # noqa: BLE001 - classified there
            return retry_or_error(ctx, verdict, exc)
    return replace(verdict, state="versioned", version=version, created=created)
