"""The console's reads of one model (``/models/<name>``): its alias moves, its recent decided runs,
its scoring runs. A page view costs at most these three requests, and the console keeps their
answer for a few seconds per model (a TTL cache), so a page left open never adds load per view.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.store import audit, experiments, keys
from watcher.store.audit import AuditEntry, AuditTrail
from watcher.store.runs import recent_decisions


def _quotable(name: str) -> bool:
    """Whether a name can sit inside a filter string's single quotes as it is."""
    return "'" not in name and "\\" not in name


def model_moves(client: MlflowClient, experiment: AuditTrail | str, model_name: str, n: int = 50) -> list[AuditEntry]:
    """The newest ``n`` audit entries of ``model_name``, every alias, in any state, oldest first."""
    exp_id = audit.trail(experiment).find(client)
    if exp_id is None or not _quotable(model_name):
        return []
    runs = client.search_runs([exp_id], f"tags.`{keys.AUDIT_MODEL}` = '{model_name}'", max_results=n,
                              order_by=["attributes.start_time DESC"])
    return audit.order([audit.from_run(run) for run in runs])


def recent_decided_runs(client: MlflowClient, experiment: str, n: int = 20) -> list[Run]:
    """The newest ``n`` decided runs of a watched experiment, newest first (none when it does not exist)."""
    exp_id = experiments.find(client, experiment, deleted="id")
    return [] if exp_id is None else recent_decisions(client, exp_id, n)


def recent_scoring_runs(client: MlflowClient, experiment: str | None, model_name: str, n: int = 10) -> list[Run]:
    """The newest ``n`` scoring runs of ``model_name`` in its scoring experiment, newest first."""
    if experiment is None or not _quotable(model_name):
        return []
    exp_id = experiments.find(client, experiment, deleted="id")
    if exp_id is None:
        return []
    return list(client.search_runs([exp_id], f"tags.`{keys.SCORING_MODEL_NAME}` = '{model_name}'", max_results=n,
                                   order_by=["attributes.start_time DESC"]))
