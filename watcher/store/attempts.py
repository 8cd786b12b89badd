"""Durable per-run attempt counter: a run that keeps failing ends as ``watcher.decision=error``.

A failure while deciding a run that is not the run's own verdict (a registry write refused, a bug
in a handler's surroundings, a 500) is counted in the run's ``watcher.attempts`` tag, versioned
JSON ``{"version": 1, "count": n, "last_error": "...", "at": "<UTC>"}``. The count lives on the
run, not in memory, so a restart neither resets it nor retries forever; after
``max_run_attempts`` the run is decided ``error`` with the error as its reason. An unreachable
server (``watcher.store.errors.is_unreachable``) is an outage and never counts.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.store import keys
from watcher.store.codec import dump, load, now_iso, truncate

ERROR_LIMIT = 2000
"""Characters of the last error kept in the tag (the full text is in the ``run_failed`` event)."""


def count(run: Run) -> int:
    """Failed attempts recorded on ``run`` so far (0 when none or unreadable)."""
    data = load(run.data.tags.get(keys.ATTEMPTS))
    return int(data.get("count", 0)) if data else 0


def record_failure(client: MlflowClient, run: Run, error: str) -> int:
    """Count one more failed attempt on the run's tag; returns the new count."""
    attempts = count(run) + 1
    client.set_tag(run.info.run_id, keys.ATTEMPTS, dump(
        {"count": attempts, "last_error": truncate(error, ERROR_LIMIT), "at": now_iso()}))
    return attempts
