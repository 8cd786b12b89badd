"""Log events of Outgoing events (issue 28): CloudEvents outputs."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event_spec as _e

EVENTS: tuple[EventSpec, ...] = (
    # ---- E1 ----
    _e("events_started", "info", "daemon", "outputs source",
       "Outgoing events are on: the outbox is open and one delivery thread per output runs."),
    _e("events_stopped", "info", "daemon", "", "The feeder and the delivery threads stopped (shutdown or reload)."),
    _e("events_derived", "info", "daemon", "why events rows seconds",
       "Facts were read from MLflow and their events appended to the outbox (rows: per output, idempotent by "
       "id). At start-up (why=startup) the last events.rederive_seconds are read again (info); after a tick, debug."),
    _e("events_derive_failed", "warning", "daemon", "why error",
       "Reading the facts or appending to the outbox failed; it is tried again at the next tick (nothing is "
       "lost: the facts stay in MLflow).", "Check the tracking server and the outbox (its file or the ha database)."),
    _e("events_outbox_failed", "warning", "daemon", "output error",
       "A delivery thread could not read or write the outbox; it tries again in 5 s.",
       "Check the outbox file's disk, or the ha lock database."),
    _e("event_delivered", "debug", "daemon", "output event_id type model_name attempts replay",
       "An event was delivered (a 2xx, a JetStream ack); that model's next event goes out."),
    _e("events_delivery_failed", "warning", "daemon",
       "output event_id type model_name attempts error retry_in_seconds",
       "An attempt failed (said at warning on an event's first failure, at debug after); it is retried with "
       "backoff and jitter, with the same id, until max_age_seconds from its first attempt.",
       "Check the receiver; registry_watcher_events_oldest_pending_seconds shows how long it has been stuck."),
    _e("events_dead_lettered", "error", "daemon", "output event_id type model_name attempts error",
       "An event was not delivered within max_age_seconds of its first attempt and is dead-lettered; the "
       "model's next event goes out.",
       "Fix the receiver, then `events redeliver --id ID --output NAME` (same id)."),
    _e("events_output_disabled", "error", "daemon", "output error",
       "The receiver answered 410 Gone: the output is disabled; its events wait (their max_age_seconds runs).",
       "When the receiver is back: `registry-watcher events enable --output NAME`."),
    _e("events_output_lock_acquired", "info", "daemon", "output",
       "Under ha, this replica took the output's advisory lock and delivers its events."),
    _e("events_output_lock_failed", "debug", "daemon", "output error",
       "Under ha, the output's lock could not be taken (the database is down); tried again in a second."),
    _e("events_output_enabled", "info", "cli", "output",
       "`events enable`: the output was enabled again; its waiting events go out."),
    _e("events_resend_requested", "info", "cli", "output event_id since model rows",
       "`events redeliver` or `events replay`: the matching events were put back in the outbox as replays "
       "(same ids); the daemon's delivery thread sends them."),
    _e("events_output_ok", "info", "cli", "output type",
       "`check-config`: the output's receiver was reached (a TCP or TLS connect, a NATS connection)."),
    _e("events_output_unreachable", "error", "cli", "output type error",
       "`check-config`: the output's receiver could not be reached.", "Check its url, the network, the secret."),
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
    # ---- E3 ----
    _e("leftover_intent_finished", "info", "daemon", "model_name alias version entry_id action",
       "Before its first tick the daemon finished one of its own alias-move intents that a killed process left "
       "open: the alias points at its version and nothing newer was recorded, so the move stands (one history "
       "entry, one alias.moved event)."),
    _e("leftover_intent_abandoned", "warning", "daemon", "model_name alias version current_version entry_id action",
       "Before its first tick the daemon abandoned (KILLED) one of its own alias-move intents that a killed "
       "process left open: the alias does not point at its version, or a newer entry was recorded since. It "
       "leaves the history and gives no event.", "None: a redone move has its own entry and event."),
    _e("leftover_intents_failed", "warning", "daemon", "error",
       "The start-up look for the daemon's own leftover alias-move intents failed (the tracking server did "
       "not answer); it is tried again before the next tick.", "Check the tracking server."),
)
