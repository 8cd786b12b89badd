"""What a tick makes of one run: :class:`RunVerdict`, a frozen value each phase returns anew.

A run goes ``run_gates`` -> ``refused`` (gates said no) -> ``rejected``; or ``passed`` -> ``versioned``
(its version found or created) -> ``registered`` (staging moved, decision written). A failure that
is not the run's own verdict is counted on the run (:func:`retry_or_error`): the run is retried
next tick (``retry``) or, after ``max_run_attempts``, decided ``error``. ``settled`` says whether
the run carries its decision now: the cursor passes only settled runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion

from handlers.base import GateResult
from watcher.engine.lineage import gates_json
from watcher.engine.session import WatchContext
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store import attempts
from watcher.store import runs as run_store
from watcher.store.errors import is_unreachable
from watcher.store.models import ModelRef
from watcher.store.registry import ForwardMove

log = get_logger("watcher.engine")
State = Literal["retry", "error", "refused", "rejected", "passed", "versioned", "registered"]


@dataclass(frozen=True)
class RunVerdict:
    """What the tick made of one run so far."""

    run: Run
    state: State = "retry"
    settled: bool = False
    """True when the run carries its decision (rejected, error, registered): the cursor may pass it."""
    results: tuple[GateResult, ...] = ()
    model: ModelRef | None = None
    version: ModelVersion | None = None
    created: bool = False
    """True when this tick created the version (False: found, made by an earlier attempt)."""
    reason: str = ""
    """Why the gates rejected the run."""
    error: str | None = None
    """The failure counted on the run in its last phase (``run_failed``), for the watch's report."""

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)


@dataclass(frozen=True)
class PageDecision:
    """What the tick made of one page: a verdict per undecided run, and the staging move if any."""

    verdicts: tuple[RunVerdict, ...] = ()
    staging: ForwardMove | None = None


@dataclass(frozen=True)
class Champion:
    """The production version and its run's metrics (read once per page, when a champion gate needs them)."""

    version: str | None = None
    metrics: dict[str, float] | None = None


def retry_or_error(ctx: WatchContext, verdict: RunVerdict, exc: Exception) -> RunVerdict:
    """A phase of the run failed: an outage raises (the watch fails, no run is blamed); any other
    failure is counted on the run, which is retried next tick or, at the limit, decided ``error``."""
    if is_unreachable(exc):
        raise exc  # an outage, not this run's failure: the watch fails and the daemon backs off
    error = f"{type(exc).__name__}: {exc}"
    decided = _count_failure(ctx, verdict.run, error)
    return replace(verdict, state="error" if decided else "retry", settled=decided, error=error)


def _count_failure(ctx: WatchContext, run: Run, error: str) -> bool:
    """Count a failed attempt on the run; after ``max_run_attempts`` decide it ``error``."""
    client, watch, limit = ctx.client, ctx.watch, ctx.config.max_run_attempts
    try:
        count = attempts.record_failure(client, run, error)
    except Exception as exc:  # noqa: BLE001 - not even the counter could be written: retry next tick
        log.error("run_failed", error=error, attempt=None, max_attempts=limit,
                  counter_error=f"{type(exc).__name__}: {exc}")
        return False
    log.error("run_failed", error=error, attempt=count, max_attempts=limit)
    if count < limit:
        return False
    reason = f"processing failed {count} times (max_run_attempts); last error: {error}"
    run_store.record_decision(client, run.info.run_id, "error", gates_json([]), reason=reason,
                              model_name=watch.model_name)
    log.error("run_errored", reason=reason, attempts=count, run_name=run.info.run_name)
    metrics.count_decision(watch.model_name, "error")
    return True
