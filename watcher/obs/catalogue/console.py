"""Log events of The console (issue 29)."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event_spec as _e

EVENTS: tuple[EventSpec, ...] = (
    _e("console_provider_failed", "warning", "daemon", "error provider",
       "A part of the daemon that feeds a console column (watch states, refusals, approvals, undelivered events, "
       "the ha replica) raised at the end of a tick; that column is left empty until it answers again.",
       "Look at the error: it is a bug in the part named by provider, not in the console."),
    _e("console_update_failed", "error", "daemon", "error",
       "The console could not take in a tick's report (a bug): its pages show the fleet as of an earlier tick; "
       "polling goes on.", "Report the error; restart the daemon to reset the console's view."),
    _e("console_read_failed", "warning", "daemon", "error page",
       "A console page (a model or a run) could not read MLflow; the page says so and shows what the daemon "
       "already knows.", "Check the tracking server (the same cause shows in the poll's own events)."),
)
