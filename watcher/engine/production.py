"""The production step of a tick: settle the protected aliases, then hand scoring on.

Every move is one entry in the audit trail (``watcher.store.audit``); scoring is keyed on the
entry's stable ``id`` (``watcher.scoring.runner``), so every change is scored exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import WatchConfig
from watcher.engine.aliases import reconcile_alias
from watcher.engine.report import WatchReport
from watcher.scoring.runner import due, maybe_score


def polices_staging(watch: WatchConfig) -> bool:
    """Whether the staging alias is protected: its policy is not ``record``."""
    return watch.staging_policy != "record"


def reconcile_production(client: MlflowClient, watch: WatchConfig, model: RegisteredModel, wr: WatchReport,
                         now: float, audit_experiment: str,
                         handoff: Callable[[str], None] | None = None) -> None:
    """Settle production (and staging, when protected) under their policies, then score the newest
    production move if it is not scored.

    With ``handoff`` (the daemon's scoring worker) the model name is handed over instead of scoring
    inline; the worker re-reads the tags, so the once-per-change guarantee is the same.
    """
    last, tags, current = reconcile_alias(client, watch, model, watch.production_alias, watch.production_policy,
                                          audit_experiment, now)
    if polices_staging(watch):
        reconcile_alias(client, watch, model, watch.staging_alias, watch.staging_policy, audit_experiment, now)
    if current is None or last is None or watch.scoring is None:
        return
    if handoff is None:
        outcome = maybe_score(client, watch, tags, last, now)
        if outcome is not None and outcome.error is None:
            wr.scored.append(outcome.version)
        elif outcome is not None:
            wr.errors.append(f"scoring v{outcome.version}: {outcome.error}")
    elif due(tags, last, now):
        handoff(watch.model_name)
        wr.queued.append(str(last.version))
