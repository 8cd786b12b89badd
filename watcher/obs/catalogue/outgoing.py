"""Log events of Outgoing events (issue 28): CloudEvents outputs."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event as _e

EVENTS: tuple[EventSpec, ...] = (
    # ---- E1 ----
    # ---- E2 ----
    _e("events_nats_stream_created", "info", "daemon", "output stream subjects",
       "The NATS output created its JetStream stream (it did not exist) covering the subjects shown, "
       "with a one-hour duplicate window."),
    _e("events_nats_disconnected", "warning", "daemon", "output",
       "The NATS output lost its connection to the server; it reconnects on its own, and publishes "
       "meanwhile are retried with the same Nats-Msg-Id.",
       "Check the NATS server if events_nats_reconnected does not follow within a minute."),
    _e("events_nats_reconnected", "info", "daemon", "output",
       "The NATS output is connected again; pending events go out, in order per model."),
)
