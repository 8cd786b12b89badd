"""What the engine writes on a registered version: governance tags, gate verdicts and lineage."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlflow.entities import Run

from handlers.base import GateResult
from watcher.config import ChampionGate, MetricGate, WatchConfig
from watcher.store import keys
from watcher.store.codec import truncate


def gates_json(results: Sequence[GateResult]) -> str:
    """The ``watcher.gates`` value: every gate's verdict, value and threshold, as JSON."""
    return json.dumps([r.as_json() for r in results], default=str)


def version_tags(watch: WatchConfig, run: Run, experiment_name: str, results: Sequence[GateResult]) -> dict[str, str]:
    """Governance tags verbatim, the gate verdicts, and lineage."""
    used = {g.metric if isinstance(g, MetricGate) else g.champion
            for g in watch.gates if isinstance(g, (MetricGate, ChampionGate))}
    metrics = {k: v for k, v in run.data.metrics.items() if k in used}
    return {
        **watch.tags,
        keys.DECISION: "registered",
        keys.REASON: f"passed all {len(results)} gates",
        keys.GATES: truncate(gates_json(results), keys.RUN_TAG_LIMIT),
        keys.SOURCE_RUN_ID: run.info.run_id,
        keys.RUN_NAME: run.info.run_name or "",
        keys.RUN_END_TIME: str(run.info.end_time),
        keys.EXPERIMENT: experiment_name,
        keys.EXPERIMENT_ID: run.info.experiment_id,
        keys.METRICS: json.dumps(metrics, default=str),
    }
