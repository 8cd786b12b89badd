"""The data of a model page (``/models/<name>``) and of a run page (``/runs/<id>``).

A model page shows what the fleet view knows (its aliases now) and three reads of that one model:
its alias moves from the audit trail, its recent decided runs (with the gate verdicts the charts
are drawn from) and its scoring runs. Those reads go through a short TTL cache keyed by model, so
however many people look, a model costs at most three requests per ``ttl`` seconds; the fleet page
itself never reads MLflow. A run page is ``explain --run``'s data, cached the same way by run id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.config import WatchConfig, WatcherConfig
from watcher.console.charts import Chart, charts
from watcher.console.view import LastDecision
from watcher.engine.explanation import ExplainError, explain
from watcher.store import console_reads, keys
from watcher.store.audit import AuditEntry
from watcher.store.codec import now_iso

RECENT_RUNS = 20
TTL_SECONDS = 5.0
"""How long one model's reads (or one run's explanation) are kept: a page refreshing every 5 s
re-reads at most once per refresh, and a decision never hides longer than that."""


@dataclass(frozen=True)
class RunRow:
    """One decided run on a model page."""

    run_id: str
    run_name: str
    decision: str
    reason: str
    version: str | None
    decided_at: str
    gates: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ScoringRow:
    """One scoring run on a model page."""

    run_id: str
    experiment_id: str
    status: str
    version: str
    alias: str
    rows: int | None
    started_at: str
    error: str


@dataclass(frozen=True)
class ModelDetail:
    """What a model page shows beyond the fleet row."""

    moves: tuple[AuditEntry, ...]
    """Alias moves, newest first."""
    runs: tuple[RunRow, ...]
    """Decided runs, newest first."""
    charts: tuple[Chart, ...]
    scoring: tuple[ScoringRow, ...]
    read_at: str

    def last_decision(self) -> LastDecision | None:
        run = self.runs[0] if self.runs else None
        if run is None:
            return None
        detail = f"v{run.version}" if run.decision == "registered" and run.version else run.reason
        return LastDecision(run.run_id, run.decision, detail, run.decided_at)


def _gate_verdicts(tags: dict[str, str]) -> tuple[dict[str, Any], ...]:
    try:
        found = json.loads(tags.get(keys.GATES) or "[]")
    except json.JSONDecodeError:
        return ()
    return tuple(g for g in found if isinstance(g, dict)) if isinstance(found, list) else ()


def _run_row(run: Run) -> RunRow:
    tags = run.data.tags
    return RunRow(run.info.run_id, run.info.run_name or "", tags.get(keys.DECISION, ""), tags.get(keys.REASON, ""),
                  tags.get(keys.MODEL_VERSION), tags.get(keys.DECIDED_AT, ""), _gate_verdicts(tags))


def _scoring_row(run: Run) -> ScoringRow:
    tags, scored = run.data.tags, run.data.metrics.get("scored_rows")
    return ScoringRow(run.info.run_id, run.info.experiment_id, run.info.status,
                      tags.get(keys.SCORING_MODEL_VERSION, ""), tags.get(keys.SCORING_MODEL_ALIAS, ""),
                      None if scored is None else int(scored), now_iso(run.info.start_time) if run.info.start_time else "",
                      tags.get(keys.SCORING_ERROR, ""))


def read_detail(client: MlflowClient, config: WatcherConfig, watch: WatchConfig) -> ModelDetail:
    """The three reads of one model (no cache)."""
    moves = console_reads.model_moves(client, config.audit_experiment, watch.model_name)
    runs = tuple(_run_row(r) for r in console_reads.recent_decided_runs(client, watch.experiment, RECENT_RUNS))
    scoring = tuple(_scoring_row(r) for r in
                    console_reads.recent_scoring_runs(client, watch.scoring_experiment, watch.model_name))
    drawn = charts([(r.run_id, r.gates) for r in reversed(runs)])
    return ModelDetail(tuple(reversed(moves)), runs, tuple(drawn), scoring, now_iso())


class DetailCache:
    """Model details and run explanations kept for :data:`TTL_SECONDS` (thread-safe)."""

    def __init__(self, client: Callable[[], MlflowClient], config: Callable[[], WatcherConfig],
                 ttl: float = TTL_SECONDS, maxsize: int = 512) -> None:
        self._client = client
        self._config = config
        self._models: TTLCache[str, ModelDetail] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._runs: TTLCache[str, dict[str, Any] | None] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def model_detail(self, watch: WatchConfig) -> ModelDetail:
        """One model's detail, read at most once per ``ttl`` (raises what MLflow raised)."""
        with self._lock:
            found = self._models.get(watch.model_name)
        if found is None:
            found = read_detail(self._client(), self._config(), watch)
            with self._lock:
                self._models[watch.model_name] = found
        return found

    def run_explained(self, run_id: str) -> dict[str, Any] | None:
        """``explain --run``'s data, or None when the run does not exist."""
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        try:
            found: dict[str, Any] | None = explain(self._client(), self._config(), run_id)
        except ExplainError:
            found = None
        with self._lock:
            self._runs[run_id] = found
        return found
