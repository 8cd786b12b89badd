"""Log events of Fleet II (issue 26): ownership, bulkheads, backfill, quiet bursts."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event as _e  # noqa: F401 - used as entries are added

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
)
