"""Durable state lives as MLflow tags on the objects it concerns; this module names the keys.

* run tags: the decision and its reasons (the audit trail a person reads in the MLflow UI);
* model version tags: governance, gate verdicts and lineage;
* registered model tags: the per-experiment cursor, the production history, the scoring record.

Every JSON value carries a ``version`` field so the format can evolve.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

STATE_VERSION = 1

# run tags
DECISION = "watcher.decision"
REASON = "watcher.reason"
MODEL_VERSION = "watcher.model_version"
GATES = "watcher.gates"
DECIDED_AT = "watcher.decided_at"
KIND = "watcher.kind"  # "scoring" / "audit" on runs the watcher logs itself; never candidates
WATCH_MODEL = "watcher.model_name"  # the registered model of the watch that decided the run

# model version tags (lineage)
SOURCE_RUN_ID = "watcher.source_run_id"
RUN_NAME = "watcher.run_name"
RUN_END_TIME = "watcher.run_end_time"
EXPERIMENT = "watcher.experiment"
EXPERIMENT_ID = "watcher.experiment_id"
METRICS = "watcher.metrics"
REGISTERED_AT = "watcher.registered_at"
PROMOTED_AT = "watcher.promoted_at"
PROMOTED_BY = "watcher.promoted_by"
PROMOTION_REASON = "watcher.promotion_reason"
PROMOTION_ACTION = "watcher.promotion_action"
PROMOTION_FORCED = "watcher.promotion_forced"  # "true" when --force overrode a refusal

# registered model tags
CURSOR_PREFIX = "watcher.cursor."
HISTORY = "watcher.production_history"  # legacy (read once, carried into the audit trail)
SCORED = "watcher.scoring"
SCORING_FAILURE = "watcher.scoring_failure"

RUN_TAG_LIMIT = 8000        # MLflow's run tag value limit
MODEL_TAG_LIMIT = 5000      # registered model tag value column (VARCHAR(5000) on PostgreSQL)


def now_iso(ms: int | None = None) -> str:
    """ISO-8601 UTC time, from epoch milliseconds or now."""
    when = datetime.now(timezone.utc) if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def dump(payload: dict[str, Any]) -> str:
    """Compact JSON with the state ``version`` field first."""
    return json.dumps({"version": STATE_VERSION, **payload}, separators=(",", ":"), default=str)


def load(value: str | None) -> dict[str, Any] | None:
    """Parse a state tag; None when absent, unreadable or of an unknown version."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return data


def cursor_key(experiment_id: str) -> str:
    """Registered model tag holding the end-time cursor of one experiment."""
    return f"{CURSOR_PREFIX}{experiment_id}"


def read_cursor(tags: dict[str, str], experiment_id: str) -> int:
    """Cursor (epoch ms of the last decided run's end time), 0 when none."""
    data = load(tags.get(cursor_key(experiment_id)))
    return int(data["end_time"]) if data else 0


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 15] + "...[truncated]"


def age_seconds(iso: str | None) -> float:
    """Seconds since an ISO time written by :func:`now_iso` (infinite when unreadable)."""
    if not iso:
        return float("inf")
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(timezone.utc) - then).total_seconds()
