"""Scoring once per production change: adopt a finished scoring run, or run the handler and record it.

Scoring is keyed on the audit entry's stable ``id`` (the audit run id of the production move): the
``watcher.scoring`` tag records the last ``entry_id`` scored, so a restart never scores again while
moving back to an older version does. A record written before the audit trail (keyed by the old
history ``seq``) still matches the migrated entry that carries that ``legacy_seq``.
A failed scoring is recorded in ``watcher.scoring_failure`` with its next attempt time (a durable
backoff). Before scoring, a FINISHED scoring run already tagged with this key is adopted (crash
repair) and stale RUNNING ones are marked KILLED, so one alias move yields exactly one scoring run.
"""

from __future__ import annotations

import time
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from structlog.contextvars import bound_contextvars

from handlers.registration import decision_of
from handlers.scoring import ScoringError, ScoringRequest, ScoringResult, batch_score
from handlers.serialization import check_flavors
from watcher import metrics, state
from watcher.config import SafeSerializationGate, WatchConfig
from watcher.imports import import_callable
from watcher.logs import get_logger
from watcher.report import WatchReport

log = get_logger("watcher.scoring")
SCORING_RUN_NAME = "model_pattern_scoring"
SEQ_TAG = "watcher.production_seq"


def same_change(record: dict[str, Any] | None, entry: dict[str, Any]) -> bool:
    """Whether a ``watcher.scoring``/``watcher.scoring_failure`` record concerns this production move."""
    if not record:
        return False
    if entry.get("action") == "revert" and record.get("model_version") == entry.get("version"):
        return True  # a revert restores the version already scored: nothing new to score
    if "entry_id" in record:
        return record["entry_id"] == entry["id"]
    return entry.get("legacy_seq") is not None and record.get("seq") == entry["legacy_seq"]


def due(tags: dict[str, str], entry: dict[str, Any], now: float) -> bool:
    """Whether the production move ``entry`` still needs scoring now (not scored, not backing off)."""
    if same_change(state.load(tags.get(state.SCORED)), entry):
        return False
    failure = state.load(tags.get(state.SCORING_FAILURE))
    if same_change(failure, entry) and now < failure.get("next_attempt_at", 0):  # type: ignore[union-attr]
        log.debug("scoring_backoff", version=entry["version"], next_attempt_at=failure["next_attempt_at"])
        return False
    return True


def maybe_score(client: MlflowClient, watch: WatchConfig, tags: dict[str, str], entry: dict[str, Any],
                 wr: WatchReport, now: float) -> None:
    if not due(tags, entry, now):
        return
    failure = state.load(tags.get(state.SCORING_FAILURE))
    version = str(entry["version"])
    with bound_contextvars(version=version):
        run_id, result, error = _score(client, watch, entry)
        if result is not None:
            client.set_registered_model_tag(watch.model_name, state.SCORED, state.dump(
                {"entry_id": entry["id"], "model_version": version, "scored_at": state.now_iso(),
                 "run_id": run_id, "rows": result.rows, "output": result.output_path}))
            if failure:
                client.delete_registered_model_tag(watch.model_name, state.SCORING_FAILURE)
            wr.scored.append(version)
            metrics.record_scoring(watch.model_name, True)
            log.info("scoring_completed", scoring_run_id=run_id, scored_rows=result.rows, output=result.output_path)
            return
        attempts = (failure.get("attempts", 0) if failure and same_change(failure, entry) else 0) + 1
        delay = watch.scoring.retry.delay(attempts)  # type: ignore[union-attr]
        client.set_registered_model_tag(watch.model_name, state.SCORING_FAILURE, state.dump(
            {"entry_id": entry["id"], "model_version": version, "attempts": attempts,
             "next_attempt_at": now + delay, "error": state.truncate(str(error), 2000)}))
        wr.errors.append(f"scoring v{version}: {error}")
        metrics.record_scoring(watch.model_name, False)
        log.error("scoring_failed", error=str(error), file=getattr(error, "file", None),
                  columns=getattr(error, "columns", None), scoring_run_id=run_id, attempt=attempts,
                  retry_in_seconds=delay)


def scoring_experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create the scoring experiment."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, tags={state.KIND: "scoring"})


def _adopt_or_clean(client: MlflowClient, experiment_id: str, key: str) -> tuple[str, ScoringResult] | None:
    runs = client.search_runs([experiment_id], f"tags.`{SEQ_TAG}` = '{key}'")
    for run in runs:
        if run.info.status == "FINISHED" and "scored_rows" in run.data.metrics:
            return run.info.run_id, ScoringResult(int(run.data.metrics["scored_rows"]),
                                                  run.data.tags.get("watcher.output", ""))
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    return None


def refusal(client: MlflowClient, watch: WatchConfig, version: str, entry: dict[str, Any]) -> str | None:
    """Why the scorer must not load this version, or None.

    Only versions that passed this watch's gates are loaded (a forced promote is the recorded
    exception), and the ``safe_serialization`` gate, when configured, is checked again on the
    version's MLmodel with today's allowlist whatever the move: loading is where code would run.
    """
    decision, reason = decision_of(client, client.get_model_version(watch.model_name, version))
    if decision != "registered" and not entry.get("forced"):
        return (f"refused to load v{version}: it did not pass this watch's gates "
                f"({decision or 'no watcher decision'}{': ' + reason if reason else ''})")
    for gate in watch.gates:
        if isinstance(gate, SafeSerializationGate) and gate.safe_serialization:
            flavors = mlflow.models.get_model_info(f"models:/{watch.model_name}/{version}").flavors
            result = check_flavors(flavors, gate)
            if not result.passed:
                return f"refused to load v{version}: safe_serialization: {result.reason}"
    return None


def _engine_handler(engine: str) -> Any:
    """The built-in scorer of ``scoring.engine``; Spark's module is imported only when chosen."""
    if engine == "spark":
        from handlers.spark_scoring import spark_score

        return spark_score
    return batch_score


def _score(client: MlflowClient, watch: WatchConfig, entry: dict[str, Any]) -> tuple[str | None, ScoringResult | None, Exception | None]:
    config = watch.scoring
    assert config is not None
    version = str(entry["version"])
    key = f"{watch.model_name}:{entry['id']}"
    try:
        refused = refusal(client, watch, version, entry)
        if refused:
            return None, None, ScoringError(refused)
        experiment_id = scoring_experiment_id(client, watch.scoring_experiment or "")
        adopted = _adopt_or_clean(client, experiment_id, key)
        if adopted:
            log.info("scoring_adopted", scoring_run_id=adopted[0])
            return adopted[0], adopted[1], None
        run = client.create_run(experiment_id, run_name=SCORING_RUN_NAME, tags={
            "model_name": watch.model_name, "model_version": version, "model_alias": watch.production_alias,
            state.KIND: "scoring", SEQ_TAG: key})
    except Exception as exc:  # noqa: BLE001 - reported as a scoring failure
        return None, None, exc
    run_id = run.info.run_id
    log.info("scoring_started", scoring_run_id=run_id, input=config.input)
    started = time.monotonic()
    try:
        client.log_param(run_id, "engine", config.engine)
        if config.handler:
            client.log_param(run_id, "handler", config.handler)
        handler = import_callable(config.handler) if config.handler else _engine_handler(config.engine)
        result = handler(ScoringRequest(watch.model_name, version, watch.production_alias,
                                        f"models:/{watch.model_name}/{version}", config))
        client.log_metric(run_id, "scored_rows", result.rows)
        client.log_metric(run_id, "scoring_seconds", time.monotonic() - started)
        client.set_tag(run_id, "watcher.output", result.output_path)
        if config.handler or config.engine == "pandas":  # a Spark dataset is too big to copy: its location is the tag
            client.log_artifact(run_id, result.output_path)
        client.set_terminated(run_id, "FINISHED")
        return run_id, result, None
    except Exception as exc:  # noqa: BLE001 - a failed scoring never stops the daemon
        try:
            client.set_tag(run_id, "watcher.error", state.truncate(f"{type(exc).__name__}: {exc}", state.RUN_TAG_LIMIT))
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001
            log.warning("scoring_run_not_marked_failed", scoring_run_id=run_id)
        return run_id, None, exc if isinstance(exc, ScoringError) else ScoringError(f"{type(exc).__name__}: {exc}")
