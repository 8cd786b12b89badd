"""Prometheus metrics of outgoing events (issue 28), served with the others at ``GET /metrics``.

Counters per output (and type): delivered, failed attempts, dead-lettered; gauges per output: the
events pending and the age of the oldest. Every label set is created at 0 when the output is
started (:func:`init_output`), so ``increase(...)`` sees the first failure after a restart too.
Names and labels are a public interface: add, never rename.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

SHORT_TYPES = ("run.decided", "alias.moved", "scoring.finished", "approval.changed")

DELIVERED = Counter("registry_watcher_events_delivered",
                    "Events delivered (a 2xx, a JetStream ack), by output and short type.", ["output", "type"])
FAILED = Counter("registry_watcher_events_failed",
                 "Failed delivery attempts (each is retried with backoff until max_age_seconds), by output.",
                 ["output"])
DEAD = Counter("registry_watcher_events_dead",
               "Events dead-lettered (undelivered after max_age_seconds from the first attempt), by output.",
               ["output"])
PENDING = Gauge("registry_watcher_events_pending", "Events waiting to be delivered, by output.", ["output"])
OLDEST = Gauge("registry_watcher_events_oldest_pending_seconds",
               "Age in seconds of the oldest event waiting on the output (0 when none waits).", ["output"])
DISABLED = Gauge("registry_watcher_events_output_disabled",
                 "1 while the output is disabled by a 410 answer (until `events enable`), else 0.", ["output"])


def init_output(output: str, types: Iterable[str] = SHORT_TYPES) -> None:
    """Create every label set of one output at 0 (idempotent)."""
    for short in types:
        DELIVERED.labels(output=output, type=short)
    FAILED.labels(output=output)
    DEAD.labels(output=output)
    PENDING.labels(output=output)
    OLDEST.labels(output=output)
    DISABLED.labels(output=output)


def delivered(output: str, short_type: str) -> None:
    """One event delivered."""
    DELIVERED.labels(output=output, type=short_type).inc()


def count_failed(output: str) -> None:
    """One failed attempt."""
    FAILED.labels(output=output).inc()


def dead(output: str) -> None:
    """One event dead-lettered."""
    DEAD.labels(output=output).inc()


def set_pending(output: str, count: int, oldest_seconds: float) -> None:
    """The output's backlog now."""
    PENDING.labels(output=output).set(count)
    OLDEST.labels(output=output).set(oldest_seconds if count else 0.0)


def mark_disabled(output: str, disabled: bool) -> None:
    """Whether the output is disabled (410)."""
    DISABLED.labels(output=output).set(1 if disabled else 0)
