"""Prometheus metrics (``prometheus_client``), defined once here and served at ``GET /metrics``.

The engine, the production reconciler, the scoring worker, the leader elector and the daemon
call the small ``record_*`` helpers; nothing else touches the metric objects. Names and labels
are a public interface (dashboards depend on them): add, never rename.

Every label set a counter can take is created at 0 before its first event (:func:`init_model`
per watched model, :func:`init_polls` once), so ``increase(...)`` sees the first failure after a
restart too.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

DECISION_VALUES = ("registered", "rejected", "error")
SCORING_OUTCOMES = ("ok", "failed")
POLL_OUTCOMES = ("ok", "error", "standby")
"""``standby``: a poll in which every watch was skipped because another replica leads it (``ha``)."""

DECISIONS = Counter(
    "registry_watcher_decisions", "Runs decided, by registered model and decision (registered, rejected, error).",
    ["model", "decision"])
POLLS = Counter("registry_watcher_polls",
                "Polls (ticks) by outcome: ok, error, or standby (every watch led by another replica).", ["outcome"])
RUN_TO_STAGING = Histogram(
    "registry_watcher_run_to_staging_seconds",
    "Seconds from a run's end time to its version holding the staging alias.",
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300, 900, 3600))
SCORINGS = Counter("registry_watcher_scorings", "Scorings by registered model and outcome: ok or failed.",
                   ["model", "outcome"])
PROTECTED_ALIAS = Counter(
    "registry_watcher_protected_alias_changes",
    "Moves of a protected alias (policy alert or revert) made outside the watcher, by model and action: "
    "moved (seen) or reverted (undone by the watcher).", ["model", "action"])
PROTECTED_ACTIONS = ("moved", "reverted")
LEADER = Gauge("registry_watcher_leader",
               "1 where this replica acts for the model (always 1 without the ha block), else 0.", ["model"])
TRACKING_UP = Gauge("registry_watcher_tracking_server_up",
                    "1 when the tracking server answered at this replica's last contact (a poll, or a standby's ping), "
                    "else 0.")
LAST_SUCCESS = Gauge("registry_watcher_last_successful_poll_timestamp_seconds",
                     "Unix time of the last poll that reached the tracking server (a standby's ping counts); "
                     "0 until the first.")


_LOCK_DB_UP: list[Gauge] = []
"""Created on first use, so the series is absent without the ``ha`` block."""


def set_lock_db_up(up: bool) -> None:
    """Whether this replica's lock database answered at its last contact (``ha`` only)."""
    if not _LOCK_DB_UP:
        _LOCK_DB_UP.append(Gauge("registry_watcher_lock_db_up",
                                 "1 when the ha lock database answered at the last contact, else 0 (absent without ha)."))
    _LOCK_DB_UP[0].set(1 if up else 0)


def init_model(model: str) -> None:
    """Create every label set of one watched model at 0 (idempotent: an existing series keeps its value)."""
    for decision in DECISION_VALUES:
        DECISIONS.labels(model=model, decision=decision)
    for outcome in SCORING_OUTCOMES:
        SCORINGS.labels(model=model, outcome=outcome)
    for action in PROTECTED_ACTIONS:
        PROTECTED_ALIAS.labels(model=model, action=action)


def init_polls() -> None:
    """Create every poll outcome at 0 (idempotent)."""
    for outcome in POLL_OUTCOMES:
        POLLS.labels(outcome=outcome)


def count_decision(model: str, decision: str) -> None:
    """Count one run decision."""
    DECISIONS.labels(model=model, decision=decision).inc()


def record_poll(ok: bool, *, standby: bool = False) -> None:
    """Count one poll: ``standby`` when it acted for nothing because other replicas lead every watch."""
    POLLS.labels(outcome="standby" if standby else "ok" if ok else "error").inc()


def set_tracking_up(up: bool) -> None:
    """Whether the tracking server answered at this replica's last contact."""
    TRACKING_UP.set(1 if up else 0)


def mark_successful_poll() -> None:
    """A poll (or a standby's ping) reached the tracking server now."""
    LAST_SUCCESS.set(time.time())


def observe_run_to_staging(seconds: float) -> None:
    """One run's end time to staging latency, in seconds (clamped at 0 for clock skew)."""
    RUN_TO_STAGING.observe(max(0.0, seconds))


def record_scoring(model: str, ok: bool) -> None:
    """Count one scoring attempt."""
    SCORINGS.labels(model=model, outcome="ok" if ok else "failed").inc()


def record_protected_alias(model: str, action: str) -> None:
    """Count an external move of a protected alias (``moved``) or the watcher's revert of one (``reverted``)."""
    PROTECTED_ALIAS.labels(model=model, action=action).inc()


def set_leader(model: str, leading: bool) -> None:
    """Whether this replica acts for ``model``."""
    LEADER.labels(model=model).set(1 if leading else 0)
