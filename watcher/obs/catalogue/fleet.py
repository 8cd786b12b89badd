"""Log events of Fleet II (issue 26): ownership, bulkheads, backfill, quiet bursts."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event as _e  # noqa: F401 - used as entries are added

EVENTS: tuple[EventSpec, ...] = (
)
