"""Training runs: their decision tags, and the reads the gates, status and explain need.

The decision is written in one ``log_batch`` and is the commit marker of a run: a run that carries
``watcher.decision`` is done and is never decided again.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run, RunTag

from watcher.store import keys
from watcher.store.codec import now_iso, truncate
from watcher.store.registry import CrashHook, no_crash


def record_decision(client: MlflowClient, run_id: str, decision: str, gates_json: str, reason: str = "",
                    version: str | None = None, crash: CrashHook = no_crash,
                    model_name: str | None = None) -> dict[str, str]:
    """Write the run's decision tags in one request; the decision tag marks the run as done. Returns
    the tags written (the committed decision: ``watcher.engine.facts`` tells it to outgoing events)."""
    tags = {
        keys.DECISION: decision,
        keys.GATES: truncate(gates_json, keys.RUN_TAG_LIMIT),
        keys.DECIDED_AT: now_iso(timespec="milliseconds"),  # orders a burst's run.decided events
    }
    if reason:
        tags[keys.REASON] = truncate(reason, keys.RUN_TAG_LIMIT)
    if version is not None:
        tags[keys.MODEL_VERSION] = str(version)
    if model_name is not None:
        tags[keys.WATCH_MODEL] = model_name
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    crash("after_decision")
    return tags


def is_candidate(run: Run) -> bool:
    """No decision yet, and not one of the watcher's own scoring or audit runs."""
    tags = run.data.tags
    return keys.DECISION not in tags and tags.get(keys.KIND) not in keys.OWN_KINDS


def get_run(client: MlflowClient, run_id: str) -> Run:
    """One run (raises when it does not exist)."""
    return client.get_run(run_id)


def run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    """A run's latest metrics (empty without a run)."""
    return dict(client.get_run(run_id).data.metrics) if run_id else {}


def recent_decisions(client: MlflowClient, experiment_id: str, last: int) -> list[Run]:
    """The newest ``last`` decided runs of an experiment, newest end time first."""
    return list(client.search_runs([experiment_id], f"tags.`{keys.DECISION}` LIKE '%'",
                                   max_results=last, order_by=["attributes.end_time DESC"]))


def matches_filter(client: MlflowClient, experiment_id: str, run_id: str, run_filter: str) -> bool:
    """Whether a run is inside a watch's ``run_filter`` (asked of the server, which owns the syntax)."""
    found = client.search_runs([experiment_id], f"attributes.run_id = '{run_id}' AND {run_filter}", max_results=1)
    return len(found) > 0
