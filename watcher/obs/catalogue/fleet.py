"""Log events of Fleet II (issue 26): ownership, bulkheads, backfill, quiet bursts."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event_spec as _e

EVENTS: tuple[EventSpec, ...] = (
    # ---- F1 ----
    _e("watch_refused", "warning", "both",
       "experiment experiment_id model_name owner_experiment owner_experiment_id reason",
       "A tagged experiment is not watched because another experiment feeds its model (the model's claim, "
       "registry-watcher.source_experiment, or the config's watches name another experiment for it), or the model "
       "already has versions from other experiments only. None of its runs is registered into that model. Said "
       "once per search result; counted in registry_watcher_watches_refused. Also said by a tick that finds the "
       "claim moved since the last search (it then decides no run of the watch).",
       "Tag the experiment with its own model, or, if it should feed this one, move ownership on purpose: "
       "registry-watcher claim --model M --experiment E --reason R (audited)."),
    _e("model_claimed", "info", "both", "by experiment experiment_id model_name reason",
       "A model's claim was recorded: by the watcher for the first experiment that feeds it (or, for a model with "
       "versions, the one its versions came from), or by an operator's claim command (audited)."),
    _e("watch_onboarded", "info", "daemon", "backfill experiment first_seen model_name runs_from",
       "A newly discovered watch got its onboarding window: its runs that ended since runs_from are decided "
       "(backfill since_tagged: from its first sighting; all or a date: older ones too, in batches)."),
    _e("backfill_progress", "info", "both", "batch cursor until",
       "A backfilling watch decided one bounded batch of older runs this tick; the next batch comes next tick."),
    _e("backfill_completed", "info", "both", "until",
       "A backfilling watch has decided every run older than its first sighting; it is polled as usual."),
    # ---- F2 ----
    _e("watch_failed", "error", "both", "experiment experiment_id reason retry_in_seconds watch",
       "One watch failed on its own: its experiment cannot be read (permission denied, deleted, renamed), its "
       "gates raise or its registry writes fail. It is held out of the fleet's ticks and probed on its own "
       "backoff (bulkheads.retry); every other watch goes on. Said once per failure; the gauge "
       "registry_watcher_watch_up is 0 meanwhile.",
       "Read the reason: grant the watcher's MLflow user READ on the experiment, restore or rename it back, or fix "
       "the gate; the watch recovers with no restart (watch_recovered)."),
    _e("watch_still_failed", "debug", "both", "reason retry_in_seconds watch",
       "A failed watch's probe or retry failed again; the next comes after retry_in_seconds."),
    _e("watch_recovered", "info", "both", "experiment experiment_id failed_seconds watch",
       "A failed watch polled well again (no restart); it is back on the fleet's schedule."),
    _e("readability_checked", "debug", "daemon", "checked unreadable",
       "The periodic check that every watched experiment can still be read (a denial that a batched run "
       "search hides)."),
    _e("tracking_server_back", "info", "daemon", "probe_url",
       "During an outage, the server's /health answered: the backoff ends and the fleet is polled at once."),
    _e("ticks_coalesced", "info", "daemon", "skipped window_seconds",
       "Ticks came due while the previous one was still running (a burst or a slow server); they were "
       "coalesced into it, never run twice at a time. Said at most once a minute; counted in "
       "registry_watcher_ticks_skipped_total.", "Nothing, unless it lasts: then the poll interval is shorter than a tick."),
    # ---- F3 ----
    _e("config_refused", "error", "cli", "experiment experiment_id model_name reason",
       "check-config: a tagged experiment the watcher would refuse to watch (an unknown profile, an empty tag, a "
       "model another experiment owns, ...); check-config exits 1.",
       "Fix the tag or the profiles, or move the model's ownership on purpose (registry-watcher claim)."),
    _e("config_problem", "error", "cli", "error location",
       "check-config: a problem the schema cannot see, located in the file (a profile whose scoring experiment is "
       "watched, ...); check-config exits 1.", "Fix the key at the location."),
    _e("config_warning", "warning", "cli", "location warning",
       "check-config: something that works but is likely a mistake (discover without a default profile, profiles "
       "nothing uses).", "Check the key at the location."),
)
