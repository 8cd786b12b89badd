"""The MLflow reads behind outgoing events (issue 28): the facts, as plain frozen values.

* :func:`decided_runs`: runs carrying a decision, by id (after a tick) or by end time (start-up);
* :func:`scoring_runs`: the watcher's finished or failed scoring runs that ended since a time;
* alias moves come from the audit trail (``batch_reads.audit_since``), and the models' aliases
  from ``batch_reads.models_by_name`` (an intent a crash left open counts when its alias points at it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.store import keys
from watcher.store.codec import parse_time_or_none
from watcher.store.paging import items

PAGE = 1000
IDS_PER_QUERY = 100


@dataclass(frozen=True)
class Decision:
    """A run's decision, as its tags record it."""

    run_id: str
    experiment_id: str
    model: str | None
    decision: str
    version: str | None
    reason: str
    gates: tuple[dict[str, Any], ...]
    decided_ms: int
    end_ms: int


@dataclass(frozen=True)
class Scoring:
    """A scoring run that ended (``FINISHED`` or ``FAILED``)."""

    run_id: str
    model: str
    version: str
    rows: int | None
    output: str
    seconds: float | None
    status: str
    end_ms: int
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _gates(text: str | None) -> tuple[dict[str, Any], ...]:
    try:
        value = json.loads(text or "[]")
    except json.JSONDecodeError:
        return ()
    return tuple(g for g in value if isinstance(g, dict)) if isinstance(value, list) else ()


def _decision(run: Run, written: Mapping[str, str] | None = None) -> Decision:
    tags = {**run.data.tags, **(written or {})}
    end = run.info.end_time or 0
    return Decision(run_id=run.info.run_id, experiment_id=run.info.experiment_id, model=tags.get(keys.WATCH_MODEL),
                    decision=tags.get(keys.DECISION, ""), version=tags.get(keys.MODEL_VERSION) or None,
                    reason=tags.get(keys.REASON, ""), gates=_gates(tags.get(keys.GATES)),
                    decided_ms=parse_time_or_none(tags.get(keys.DECIDED_AT)) or end, end_ms=end)


def recorded_decision(run: Run, written: Mapping[str, str]) -> Decision:
    """The decision of ``run`` whose tags ``written`` were just recorded: the same value as
    :func:`decided_runs` reads back (so the same event, with the same id and sequence)."""
    return _decision(run, written)


def decided_runs(client: MlflowClient, experiment_ids: Sequence[str], *, run_ids: Sequence[str] | None = None,
                 since_end_ms: int | None = None) -> list[Decision]:
    """Decided runs of ``experiment_ids``: those of ``run_ids``, or those that ended at or after ``since_end_ms``."""
    if not experiment_ids:
        return []
    decided = f"tags.`{keys.DECISION}` LIKE '%'"
    if run_ids is None:
        since = f" AND attributes.end_time >= {int(since_end_ms or 0)}"
        return [_decision(r) for r in items(client.search_runs, list(experiment_ids), decided + since,
                                            max_results=PAGE, order_by=["attributes.end_time ASC"])]
    found: list[Decision] = []
    ids = sorted(set(run_ids))
    for start in range(0, len(ids), IDS_PER_QUERY):
        listed = ", ".join(f"'{i}'" for i in ids[start:start + IDS_PER_QUERY])
        found += [_decision(r) for r in items(client.search_runs, list(experiment_ids),
                                              f"{decided} AND attributes.run_id IN ({listed})", max_results=PAGE)]
    return found


def scoring_runs(client: MlflowClient, experiment_ids: Sequence[str], since_end_ms: int) -> list[Scoring]:
    """The watcher's scoring runs that ended (finished or failed) at or after ``since_end_ms``."""
    if not experiment_ids:
        return []
    query = (f"tags.`{keys.KIND}` = '{keys.KIND_SCORING}' AND attributes.end_time >= {int(since_end_ms)} "
             "AND attributes.status IN ('FINISHED', 'FAILED')")
    found = []
    for run in items(client.search_runs, list(experiment_ids), query, max_results=PAGE,
                     order_by=["attributes.end_time ASC"]):
        tags, metrics = run.data.tags, run.data.metrics
        if not tags.get(keys.SCORING_MODEL_NAME) or not run.info.end_time:
            continue
        rows = metrics.get("scored_rows")
        found.append(Scoring(run_id=run.info.run_id, model=tags[keys.SCORING_MODEL_NAME],
                             version=tags.get(keys.SCORING_MODEL_VERSION, ""),
                             rows=None if rows is None else int(rows), output=tags.get(keys.SCORING_OUTPUT, ""),
                             seconds=metrics.get("scoring_seconds"), status=run.info.status.lower(),
                             end_ms=run.info.end_time, error=tags.get(keys.SCORING_ERROR)))
    return found
