"""Why a run was registered or rejected, and what followed: the data of ``explain --run`` and of the
console's run page (``/runs/<id>``).

It reads only what MLflow holds, so an auditor can ask long after the fact: the run's
``watcher.*`` tags (decision, reason, the ``watcher.gates`` verdicts with each gate's input value
and threshold, the version, and ``watcher.model_name``, the watch that decided it), the version's
tags, the registered model's aliases that point at that version today, and the audit trail's
production moves onto it. The config is used only as a fallback to name the watch (runs decided
before ``watcher.model_name`` was written) and to say whether an undecided run is in its scope.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from watcher.config import WatcherConfig
from watcher.store import audit, experiments, registry
from watcher.store import keys as state
from watcher.store import runs as run_store
from watcher.store.codec import now_iso

VERSION_KEYS = (state.DECISION, state.REASON, state.SOURCE_RUN_ID, state.REGISTERED_AT, state.PROMOTED_AT,
                state.PROMOTED_BY, state.PROMOTION_REASON, state.PROMOTION_ACTION, state.PROMOTION_FORCED)


class ExplainError(Exception):
    """The run cannot be explained (it does not exist); the message says why."""


def _watch_of_run(config: WatcherConfig, run_tags: dict[str, str], experiment: str) -> dict[str, Any] | None:
    model_name, source = run_tags.get(state.WATCH_MODEL), "run tag watcher.model_name"
    configured = config.watch_for(model_name) if model_name else None
    if model_name is None:
        configured = next((w for w in config.watches if w.experiment == experiment), None)
        model_name, source = (configured.model_name, "config (watch of this experiment)") if configured else (None, "")
    if model_name is None:
        return None
    return {"model_name": model_name, "experiment": experiment, "source": source,
            "run_filter": configured.run_filter if configured else None,
            "production_alias": configured.production_alias if configured else "production"}


def _in_scope(client: MlflowClient, experiment_id: str, run_id: str, run_filter: str | None) -> bool:
    if not run_filter:
        return True
    return run_store.matches_filter(client, experiment_id, run_id, run_filter)


def _version(client: MlflowClient, config: WatcherConfig, watch: dict[str, Any], run_id: str,
             number: str | None) -> dict[str, Any] | None:
    name = watch["model_name"]
    try:
        if number is None:  # a rejected run whose version the training job had registered itself
            found = registry.find_version(client, name, run_id)
            if found is None:
                return None
            number = str(found.version)
        mv = registry.get_version(client, name, number)
        model = registry.get_model(client, name)
    except MlflowException:
        return {"model_name": name, "version": number, "exists": False}
    aliases = sorted(a for a, v in registry.aliases_of(model).items() if v == str(number))
    moves = [e.public() for e in audit.entries(client, config.audit_experiment, name, watch["production_alias"])
             if e.version == str(number)]
    return {"model_name": name, "version": str(number), "exists": True,
            "tags": {k: mv.tags[k] for k in VERSION_KEYS if k in (mv.tags or {})},
            "aliases": aliases, "production_moves": moves}


def explain(client: MlflowClient, config: WatcherConfig, run_id: str) -> dict[str, Any]:
    """Everything MLflow holds about the watcher's decision on ``run_id`` and what followed."""
    try:
        run = run_store.get_run(client, run_id)
    except MlflowException as exc:
        raise ExplainError(f"run '{run_id}' not found on {config.tracking_uri}: {exc.message}") from exc
    tags = dict(run.data.tags)
    experiment = experiments.name_of(client, run.info.experiment_id)
    watch = _watch_of_run(config, tags, experiment)
    try:
        gates = json.loads(tags.get(state.GATES) or "[]")
    except json.JSONDecodeError:
        gates = [{"gate": "(unreadable watcher.gates tag)", "passed": None, "reason": tags.get(state.GATES)}]
    decided = state.DECISION in tags
    result: dict[str, Any] = {
        "run_id": run_id, "run_name": run.info.run_name, "experiment": experiment, "status": run.info.status,
        "ended_at": now_iso(run.info.end_time) if run.info.end_time else None,
        "watch": watch, "decision": tags.get(state.DECISION), "reason": tags.get(state.REASON, ""),
        "decided_at": tags.get(state.DECIDED_AT), "gates": gates, "version": None,
    }
    if not decided:
        in_scope = watch is not None and _in_scope(client, run.info.experiment_id, run_id, watch["run_filter"])
        result["note"] = ("no watch covers this experiment" if watch is None else
                          "outside the watch's run_filter: left alone" if not in_scope else
                          "not finished yet" if run.info.status != "FINISHED" else "not decided yet")
    if watch is not None and (decided or tags.get(state.MODEL_VERSION)):
        result["version"] = _version(client, config, watch, run_id, tags.get(state.MODEL_VERSION))
    return result
