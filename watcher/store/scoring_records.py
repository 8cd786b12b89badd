"""What was scored, what failed, and the scoring runs themselves.

* ``watcher.scoring`` (registered-model tag): the last production move scored, keyed on its audit
  entry's stable id, as a :class:`ScoringRecord`. A record written before the audit trail (keyed by
  the old history ``seq``) still matches the migrated entry that carries that ``legacy_seq``.
* ``watcher.scoring_failure``: the move whose scoring failed, its attempts and the next attempt
  time (a durable backoff), as a :class:`ScoringFailure`.
* ``model_pattern_scoring`` runs in the scoring experiment, tagged ``watcher.production_seq`` with
  ``<model>:<entry id>``: a FINISHED one is adopted after a crash, stale RUNNING ones are KILLED.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import RunStatus

from watcher.store import experiments, keys
from watcher.store.audit import AuditEntry
from watcher.store.codec import dump, load, now_iso, truncate

SCORING_RUN_NAME = "model_pattern_scoring"


@dataclass(frozen=True)
class ScoringRecord:
    """The ``watcher.scoring`` tag: the last production move scored."""

    model_version: str
    entry_id: str | None = None
    seq: int | None = None
    """Legacy key (before the audit trail): the history entry's ``seq``."""
    scored_at: str | None = None
    run_id: str | None = None
    rows: int | None = None
    output: str | None = None


@dataclass(frozen=True)
class ScoringFailure:
    """The ``watcher.scoring_failure`` tag: a move whose scoring failed, and when to try again."""

    model_version: str
    attempts: int
    next_attempt_at: float
    """Epoch seconds."""
    error: str
    entry_id: str | None = None
    seq: int | None = None

    def as_json(self) -> dict[str, Any]:
        """As stored (and as ``status --json`` shows it), ``version`` first."""
        order = ("entry_id", "seq", "model_version", "attempts", "next_attempt_at", "error")
        data = asdict(self)
        return {"version": 1, **{k: data[k] for k in order if data[k] is not None}}


def _fields(data: dict[str, Any], cls: type[ScoringRecord] | type[ScoringFailure]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def read_scored(tags: dict[str, str]) -> ScoringRecord | None:
    """The ``watcher.scoring`` record, or None."""
    data = load(tags.get(keys.SCORED))
    if not data or "model_version" not in data:
        return None
    return ScoringRecord(**_fields(data, ScoringRecord))


def read_failure(tags: dict[str, str]) -> ScoringFailure | None:
    """The ``watcher.scoring_failure`` record, or None."""
    data = load(tags.get(keys.SCORING_FAILURE))
    if not data or "model_version" not in data:
        return None
    data.setdefault("attempts", 0)
    data.setdefault("next_attempt_at", 0.0)
    data.setdefault("error", "")
    return ScoringFailure(**_fields(data, ScoringFailure))


def concerns(record: ScoringRecord | ScoringFailure | None, entry: AuditEntry) -> bool:
    """Whether a record concerns this production move."""
    if record is None:
        return False
    if entry.action == "revert" and record.model_version == entry.version:
        return True  # a revert restores the version already scored: nothing new to score
    if record.entry_id is not None:
        return record.entry_id == entry.id
    return entry.legacy_seq is not None and record.seq == entry.legacy_seq


def write_scored(client: MlflowClient, model_name: str, entry: AuditEntry, run_id: str | None, rows: int,
                 output: str, clear_failure: bool) -> None:
    """Record a scored move (and drop the failure record, if any)."""
    client.set_registered_model_tag(model_name, keys.SCORED, dump(
        {"entry_id": entry.id, "model_version": str(entry.version), "scored_at": now_iso(),
         "run_id": run_id, "rows": rows, "output": output}))
    if clear_failure:
        client.delete_registered_model_tag(model_name, keys.SCORING_FAILURE)


def write_failure(client: MlflowClient, model_name: str, entry: AuditEntry, attempts: int,
                  next_attempt_at: float, error: str) -> None:
    """Record a failed scoring and when it may be tried again."""
    client.set_registered_model_tag(model_name, keys.SCORING_FAILURE, dump(
        {"entry_id": entry.id, "model_version": str(entry.version), "attempts": attempts,
         "next_attempt_at": next_attempt_at, "error": truncate(error, 2000)}))


def scoring_key(model_name: str, entry: AuditEntry) -> str:
    """The ``watcher.production_seq`` value of the scoring run of this move."""
    return f"{model_name}:{entry.id}"


def scoring_experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create the scoring experiment."""
    return experiments.get_or_create(client, name, keys.KIND_SCORING, "scoring.experiment")


def adopt_or_clean(client: MlflowClient, experiment_id: str, key: str) -> tuple[str, int, str] | None:
    """A FINISHED scoring run of ``key``: (run id, rows, output); stale RUNNING ones are KILLED."""
    runs = client.search_runs([experiment_id], f"tags.`{keys.SCORING_KEY}` = '{key}'")
    for run in runs:
        if run.info.status == "FINISHED" and "scored_rows" in run.data.metrics:
            return run.info.run_id, int(run.data.metrics["scored_rows"]), run.data.tags.get(keys.SCORING_OUTPUT, "")
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    return None


def start_run(client: MlflowClient, experiment_id: str, *, model_name: str, version: str, alias: str,
              key: str) -> str:
    """Create the ``model_pattern_scoring`` run; returns its id."""
    run = client.create_run(experiment_id, run_name=SCORING_RUN_NAME, tags={
        keys.SCORING_MODEL_NAME: model_name, keys.SCORING_MODEL_VERSION: version, keys.SCORING_MODEL_ALIAS: alias,
        keys.KIND: keys.KIND_SCORING, keys.SCORING_KEY: key})
    return str(run.info.run_id)


def log_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    """The scoring run's parameters (engine, handler)."""
    for name, value in params.items():
        client.log_param(run_id, name, value)


def finish_run(client: MlflowClient, run_id: str, rows: int, seconds: float, output: str,
               artifact: str | None) -> None:
    """Log the outcome (``scored_rows``, ``scoring_seconds``, the output) and mark the run FINISHED."""
    client.log_metric(run_id, "scored_rows", rows)
    client.log_metric(run_id, "scoring_seconds", seconds)
    client.set_tag(run_id, keys.SCORING_OUTPUT, output)
    if artifact is not None:
        client.log_artifact(run_id, artifact)
    client.set_terminated(run_id, "FINISHED")


def fail_run(client: MlflowClient, run_id: str, error: str) -> None:
    """Mark a scoring run FAILED with its error."""
    client.set_tag(run_id, keys.SCORING_ERROR, truncate(error, keys.RUN_TAG_LIMIT))
    client.set_terminated(run_id, "FAILED")
