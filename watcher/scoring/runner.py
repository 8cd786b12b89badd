"""Scoring once per production move: adopt a finished scoring run, or run the handler and record it.

Scoring is keyed on the audit entry's stable ``id`` (the audit run id of the production move): the
``watcher.scoring`` tag records the last entry scored, so a restart never scores again while
moving back to an older version does. A failed scoring is recorded in ``watcher.scoring_failure``
with its next attempt time (a durable backoff). Before scoring, a FINISHED scoring run already
tagged with this key is adopted (crash repair) and stale RUNNING ones are marked KILLED, so one
alias move yields exactly one scoring run (``watcher.store.scoring_records``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlflow import MlflowClient
from structlog.contextvars import bound_contextvars

from handlers.scoring import ScoringError, ScoringRequest
from handlers.serialization import check_flavors
from watcher.config import SafeSerializationGate, WatchConfig, import_callable
from watcher.obs import metrics, metrics_console
from watcher.obs.logs import get_logger
from watcher.scoring.engines import engine_handler
from watcher.store import models, registry
from watcher.store import scoring_records as records
from watcher.store.audit import AuditEntry

log = get_logger("watcher.scoring")


@dataclass(frozen=True)
class ProductionMove:
    """The production move that needs scoring, as the engine's production step knows it: handed to
    the scoring worker, which scores it without reading the audit trail again."""

    model_name: str
    alias: str
    entry: AuditEntry
    """The move's audit entry (a pending intent while its writer finishes it: same id); the scoring key."""

    @property
    def version(self) -> str | None:
        """The version the move put behind the alias."""
        return self.entry.version

    @property
    def previous(self) -> str | None:
        """The version the alias pointed at before."""
        return self.entry.previous


@dataclass(frozen=True)
class ScoringAttempt:
    """One scoring attempt: the scoring run (if one was made), rows and output, or the error."""

    run_id: str | None
    version: str = ""
    rows: int = 0
    output: str = ""
    error: Exception | None = None


def due(tags: dict[str, str], entry: AuditEntry, now: float) -> bool:
    """Whether the production move ``entry`` still needs scoring now (not scored, not backing off)."""
    if records.concerns(records.read_scored(tags), entry):
        return False
    failure = records.read_failure(tags)
    if failure is not None and records.concerns(failure, entry) and now < failure.next_attempt_at:
        log.debug("scoring_backoff", version=entry.version, next_attempt_at=failure.next_attempt_at)
        return False
    return True


def maybe_score(client: MlflowClient, watch: WatchConfig, tags: dict[str, str], entry: AuditEntry,
                now: float) -> ScoringAttempt | None:
    """Score the move ``entry`` unless it is scored or backing off (None), and record the outcome."""
    if not due(tags, entry, now) or watch.scoring is None:
        return None
    failure = records.read_failure(tags)
    version = str(entry.version)
    with bound_contextvars(version=version):
        started = time.monotonic()
        outcome = _attempt(client, watch, entry)
        metrics_console.observe_scoring(watch.model_name, time.monotonic() - started,
                                        outcome.rows if outcome.error is None else 0)
        if outcome.error is None:
            records.write_scored(client, watch.model_name, entry, outcome.run_id, outcome.rows, outcome.output,
                                 clear_failure=failure is not None)
            metrics.record_scoring(watch.model_name, True)
            log.info("scoring_completed", scoring_run_id=outcome.run_id, scored_rows=outcome.rows,
                     output=outcome.output)
            return outcome
        error = outcome.error
        attempts = (failure.attempts if failure is not None and records.concerns(failure, entry) else 0) + 1
        delay = watch.scoring.retry.delay(attempts)
        records.write_failure(client, watch.model_name, entry, attempts, now + delay, str(error))
        metrics.record_scoring(watch.model_name, False)
        log.error("scoring_failed", error=str(error), file=getattr(error, "file", None),
                  columns=getattr(error, "columns", None), scoring_run_id=outcome.run_id, attempt=attempts,
                  retry_in_seconds=delay)
        return outcome


def refusal(client: MlflowClient, watch: WatchConfig, version: str, entry: AuditEntry) -> str | None:
    """Why the scorer must not load this version, or None.

    Only versions that passed this watch's gates are loaded (a forced promote is the recorded
    exception), and the ``safe_serialization`` gate, when configured, is checked again on the
    version's MLmodel with today's allowlist whatever the move: loading is where code would run.
    """
    decision, reason = registry.decision_of(client, registry.get_version(client, watch.model_name, version))
    if decision != "registered" and not entry.forced:
        return (f"refused to load v{version}: it did not pass this watch's gates "
                f"({decision or 'no watcher decision'}{': ' + reason if reason else ''})")
    for gate in watch.gates:
        if isinstance(gate, SafeSerializationGate) and gate.safe_serialization:
            result = check_flavors(models.version_flavors(watch.model_name, version), gate)
            if not result.passed:
                return f"refused to load v{version}: safe_serialization: {result.reason}"
    return None


def _attempt(client: MlflowClient, watch: WatchConfig, entry: AuditEntry) -> ScoringAttempt:
    config = watch.scoring
    assert config is not None
    version = str(entry.version)
    try:
        refused = refusal(client, watch, version, entry)
        if refused:
            return ScoringAttempt(None, version, error=ScoringError(refused))
        experiment_id = records.scoring_experiment_id(client, watch.scoring_experiment or "")
        key = records.scoring_key(watch.model_name, entry)
        adopted = records.adopt_or_clean(client, experiment_id, key)
        if adopted:
            log.info("scoring_adopted", scoring_run_id=adopted[0])
            return ScoringAttempt(adopted[0], version, adopted[1], adopted[2])
        run_id = records.start_run(client, experiment_id, model_name=watch.model_name, version=version,
                                   alias=watch.production_alias, key=key)
    except Exception as exc:  # noqa: BLE001 - reported as a scoring failure
        return ScoringAttempt(None, version, error=exc)
    log.info("scoring_started", scoring_run_id=run_id, input=config.input)
    started = time.monotonic()
    try:
        records.log_params(client, run_id, {"engine": config.engine,
                                            **({"handler": config.handler} if config.handler else {})})
        handler = import_callable(config.handler) if config.handler else engine_handler(config.engine)
        result = handler(ScoringRequest(watch.model_name, version, watch.production_alias,
                                        f"models:/{watch.model_name}/{version}", config))
        # a Spark dataset is too big to copy: its location is the tag, not an artifact
        copy = config.handler is not None or config.engine == "pandas"
        records.finish_run(client, run_id, result.rows, time.monotonic() - started, result.output_path,
                           result.output_path if copy else None)
        return ScoringAttempt(run_id, version, result.rows, result.output_path)
    except Exception as exc:  # noqa: BLE001 - a failed scoring never stops the daemon
        try:
            records.fail_run(client, run_id, f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001
            log.warning("scoring_run_not_marked_failed", scoring_run_id=run_id)
        error = exc if isinstance(exc, ScoringError) else ScoringError(f"{type(exc).__name__}: {exc}")
        return ScoringAttempt(run_id, version, error=error)
