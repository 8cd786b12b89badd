"""Prometheus metrics the console's Grafana dashboard (issue 29) needs besides the others: how long a
tick takes, and how long a scoring takes and how many rows it scored.

Names and labels are a public interface (``deploy/grafana/registry-watcher.json`` queries them):
add, never rename.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TICK_SECONDS = Histogram(
    "registry_watcher_tick_duration_seconds", "Seconds one tick took (reconcile_once over the watches it covered).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
SCORING_SECONDS = Histogram(
    "registry_watcher_scoring_duration_seconds", "Seconds one scoring attempt took, by registered model.", ["model"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600))
SCORED_ROWS = Counter("registry_watcher_scored_rows", "Rows scored by successful scorings, by registered model.",
                      ["model"])


def observe_tick(seconds: float) -> None:
    """One tick's duration."""
    TICK_SECONDS.observe(max(0.0, seconds))


def observe_scoring(model: str, seconds: float, rows: int) -> None:
    """One scoring attempt: its duration, and the rows it scored (0 when it failed)."""
    SCORING_SECONDS.labels(model=model).observe(max(0.0, seconds))
    SCORED_ROWS.labels(model=model).inc(max(0, rows))


def init_scoring_model(model: str) -> None:
    """Create a scoring model's series at 0 (idempotent)."""
    SCORED_ROWS.labels(model=model)
    SCORING_SECONDS.labels(model=model)
