"""The log event catalogue: every event the daemon and the CLI emit, declared once.

Each :class:`EventSpec` says the event's usual level, the fields it carries besides the bound
context (``run_id``, ``model_name``, ``version``, ``experiment``, bound with contextvars where they
apply), what happened and what an operator should do. An event whose level depends on the
circumstance (debug during an outage, else warning) declares its usual level and says so.

The watcher's loggers (:func:`watcher.obs.logs.get_logger`) emit only events named here;
``tests/test_event_catalogue.py`` scans the code for every event and fails on one that is missing
or on an entry nothing emits. The docs' event reference is generated from :data:`CATALOGUE`.
Emitter: ``daemon`` is the ``run`` process, ``cli`` the other verbs (``once``, ``check-config``,
``promote``, ...), ``both`` either (``once`` runs the same tick as the daemon).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from watcher.obs.catalogue import approvals, console, fleet, outgoing
from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event_spec as _e

_OUTAGE = "Debug while the tracking server is unreachable (the outage is said once by tracking_server_unreachable)."
_EVENTS = (
    # ---- process lifecycle ------------------------------------------------------------------------------------------
    _e("watcher_started", "info", "daemon", "discover ha http poll_interval_seconds tracking_uri watches",
       "The daemon started polling with this configuration."),
    _e("watcher_stopped", "info", "daemon", "", "The daemon stopped every part in order and exits 0."),
    _e("shutdown_requested", "info", "daemon", "signal", "SIGTERM or SIGINT: the run in hand finishes, no tick starts."),
    _e("reload_requested", "info", "daemon", "signal", "SIGHUP: the config file is re-read before the next tick."),
    _e("config_reloaded", "info", "daemon", "changed config watches",
       "The re-read file is in force (changed: the top-level keys that differ)."),
    _e("config_reload_failed", "error", "daemon", "config error hint",
       "The re-read file is invalid (the old config stays) or a part could not restart under the new one.",
       "Fix the file as the error says (check-config prints the same) and send SIGHUP again."),
    _e("config_invalid", "error", "both", "config error",
       "The config file is missing or invalid; the command exits 2 (check-config: 1).",
       "Fix the file as the error says; check-config validates it without side effects."),
    _e("command_failed", "error", "both", "error verb", "A command failed with an unexpected error; it exits 1.",
       "Read the error; an unreachable server is the usual cause (see tracking_server_unreachable)."),
    _e("uncaught_exception", "critical", "both", "exception", "An exception escaped every handler (a bug).",
       "Report it with the traceback; the supervisor restarts the daemon."),
    _e("uncatalogued_event", "error", "both", "event_name hint",
       "The code emitted an event missing from this catalogue (a bug); the event was written as it came.",
       "Report it; nothing is lost."),
    # ---- the poll -----------------------------------------------------------------------------------------------------
    _e("poll_completed", "info", "both", "ok registered rejected scored scoring_queued",
       "One poll ended: its counts. Debug when it found nothing to do."),
    _e("poll_failed", "error", "both", "consecutive_failures error retry_in_seconds",
       "A poll failed (5xx, bug, lock); the next one waits retry_in_seconds. Error on the first failure, "
       "then warning; " + _OUTAGE, "Read the error; if it repeats, see the watch_failed or run_failed lines before it."),
    _e("poll_recovered", "info", "daemon", "after_failures", "The first good poll after failed ones (not an outage)."),
    _e("tracking_server_unreachable", "error", "both", "error hint retry_in_seconds",
       "The tracking server does not answer (refused, timeout, 502/503/504): said once when an outage starts "
       "(daemon, which backs off) or by check-config. No run is blamed.",
       "Check the MLflow server and the network; nothing is lost, runs are picked up on return."),
    _e("tracking_server_recovered", "info", "daemon", "failed_polls outage_seconds",
       "The outage ended: the server answered again after failed_polls polls."),
    _e("webhook_tick", "info", "daemon", "deliveries", "A tick that verified webhook deliveries asked for (one line per tick)."),
    _e("tick_requested", "debug", "daemon", "experiments reason", "A tick was asked for (webhook, run event, work found)."),
    _e("fleet_read_failed", "error", "both", "error error_type",
       "The fleet-wide read at the start of a tick failed (not an outage); every watch failed this poll.",
       "Read the error; the next poll retries."),
    _e("fleet_scan_refused", "debug", "both", "error",
       "The server refused the fleet-wide run search; each watch searches on its own instead."),
    _e("search_null_filter_unsupported", "warning", "both", "error hint",
       "The server cannot filter runs on a missing tag; decided runs in the overlap window are filtered by the watcher.",
       "Nothing, or upgrade the MLflow server to save requests."),
    # ---- a watch and its runs -----------------------------------------------------------------------------------------
    _e("experiment_missing", "warning", "both", "hint",
       "The watched experiment does not exist (yet). Warning once, then debug.",
       "Create the experiment or fix its name; polling goes on."),
    _e("registered_model_created", "info", "both", "", "The watch's registered model did not exist and was created."),
    _e("cursor_advanced", "debug", "both", "end_time experiment_id", "The watch's cursor moved past decided runs."),
    _e("run_registered", "info", "both", "alias created run_name staging_moved",
       "The canonical decision line of a passing run: its version exists and staging moved to it (staging_moved)."),
    _e("run_rejected", "warning", "both", "existing_version failed_gates reason run_name",
       "The canonical decision line of a rejected run: the gates it failed (existing_version: it had registered itself).",
       "Nothing, unless the gates are wrong; explain --run shows why."),
    _e("run_failed", "error", "both", "attempt counter_error error max_attempts",
       "Processing one run failed; counted on the run and retried next poll.",
       "Read the error; after max_attempts the run is decided error (run_errored)."),
    _e("run_errored", "error", "both", "attempts reason run_name",
       "The canonical decision line of a run decided error after max_run_attempts failures; it is not retried.",
       "Fix the cause (the last error is in reason), then re-run the training or register it by hand."),
    _e("version_lookup_failed", "debug", "both", "error",
       "The batched version lookup of a page of runs failed; each run looks itself up and classifies the error."),
    _e("version_repaired", "info", "both", "tags_written version",
       "A version existed without all of its tags (an interrupted registration); the missing ones were written."),
    _e("staging_alias_moved", "info", "both", "alias previous_version", "The staging alias moved to the new version."),
    # ---- aliases and governance ---------------------------------------------------------------------------------------
    _e("production_alias_changed", "info", "both", "by previous_version version",
       "Production moved outside the watcher (by: external); the new version is scored."),
    _e("production_alias_removed", "warning", "both", "alias previous_version",
       "The production alias was deleted; nothing is scored.", "Set the alias again if that was not intended."),
    _e("protected_alias_moved", "error", "both", "alias by moved_by policy previous_version version",
       "An alias under alert or revert was moved or removed outside the watcher (moved_by: always null, MLflow "
       "does not record it).", "Find who moved it; under revert the watcher puts it back (protected_alias_reverted)."),
    _e("protected_alias_reverted", "error", "both", "alias attempt_entry_id attempted_version entry_id moved_by "
       "restored_version", "Under revert, the alias was put back (restored_version null: removed).",
       "Use promote / rollback to move a protected alias."),
    _e("alias_baseline_adopted", "info", "both", "alias version",
       "A protected alias with no recorded move: its position is taken as given, once."),
    _e("promotion_completed_by_watcher", "info", "both", "alias by entry_id reason version writer_host writer_pid",
       "A CLI promote moved the alias but did not finish its audit entry; the daemon finished it (reason: "
       "process_gone or timeout)."),
    _e("promotion_in_progress", "debug", "both", "alias by entry_id version",
       "A promote's intent whose writer may still run: left to it."),
    _e("promotion_intent_abandoned", "warning", "both", "alias by entry_id version",
       "A promote intent whose alias never moved (the CLI died first) was dropped after 5 min.",
       "Run the promote again if it is still wanted."),
    _e("audit_history_migrated", "info", "both", "entries model_name written",
       "The legacy history tag was carried into the audit experiment."),
    _e("model_promoted", "info", "cli", "by forced model_name previous_version reason version",
       "promote moved the production alias; the daemon scores it."),
    _e("model_rolled_back", "info", "cli", "by forced model_name previous_version reason version",
       "rollback moved production back; the daemon scores it."),
    _e("promotion_forced", "warning", "cli", "action by decision decision_reason model_name previous_version reason "
       "version", "promote/rollback --force moved production onto a rejected or undecided version.",
       "Review the reason given; the audit trail keeps it."),
    # ---- scoring ------------------------------------------------------------------------------------------------------
    _e("scoring_queued", "debug", "daemon", "busy_with model_name", "A production move was handed to the scoring worker."),
    _e("scoring_skipped_not_leader", "info", "daemon", "model_name",
       "Not scored: this replica lost the model's lock; its leader scores it."),
    _e("scoring_worker_failed", "error", "daemon", "error model_name",
       "The scoring worker hit an unexpected error; the next poll hands the model over again.", "Read the error (a bug)."),
    _e("scoring_backoff", "debug", "both", "next_attempt_at version", "A failed scoring waits for its retry time."),
    _e("scoring_started", "info", "both", "input scoring_run_id", "Scoring of the production version started."),
    _e("scoring_adopted", "info", "both", "scoring_run_id",
       "A scoring run left by a previous process was adopted instead of starting another."),
    _e("scoring_completed", "info", "both", "output scored_rows scoring_run_id", "Scoring finished; the output is written."),
    _e("scoring_failed", "error", "both", "attempt columns error file retry_in_seconds scoring_run_id",
       "Scoring failed (file, columns name the bad input); retried after retry_in_seconds.",
       "Fix the input or the model as the error says."),
    _e("scoring_run_not_marked_failed", "warning", "both", "scoring_run_id",
       "A failed scoring run could not be marked FAILED in MLflow.", "Nothing; the next attempt cleans it up."),
    _e("spark_session_started", "info", "both", "app_id master spark_version", "The Spark engine's session started."),
    _e("spark_session_stopped", "info", "both", "", "The Spark engine's session stopped (JVM and workers)."),
    # ---- ha: leader and replicas -------------------------------------------------------------------------------------
    _e("leadership_acquired", "info", "both", "lock_key model_name", "This replica now acts for model_name."),
    _e("standby", "info", "both", "hint model_name", "Another replica leads model_name (said once); retried every poll."),
    _e("leadership_lost", "error", "both", "error hint model_name",
       "The lock connection died; writes for the model stopped until the lock is taken again.",
       "Check the lock database; retried every poll."),
    _e("leadership_released", "info", "daemon", "model_name reason to_replica",
       "This replica gave model_name up to to_replica between ticks (its share changed)."),
    _e("replicas_changed", "info", "daemon", "group models replicas share", "The group's live replicas changed."),
    _e("leader_lock_unreachable", "error", "both", "error",
       "The ha lock database does not answer: this replica acts for nothing. Error once, then debug.",
       "Check the lock database (PostgreSQL)."),
    _e("leader_lock_reachable", "info", "both", "", "The ha lock database answers again."),
    _e("standby_ping_failed", "debug", "daemon", "error unreachable",
       "A standby replica could not reach the tracking server (its readiness says so)."),
    # ---- discovery ----------------------------------------------------------------------------------------------------
    _e("watch_discovered", "info", "both", "experiment model_name profile",
       "An experiment carrying the discovery tag is watched."),
    _e("watch_dropped", "info", "both", "experiment model_name reason",
       "A discovered watch stopped: tag removed or experiment deleted (info), or refused: unknown profile, empty "
       "tag, a prompt's name, ... (warning, once).", "For a refusal, fix the experiment's tag as reason says."),
    _e("discovery_failed", "warning", "both", "error hint",
       "The experiment search for the discovery tag failed; the watches found before stay. " + _OUTAGE,
       "Read the error if it repeats."),
    # ---- HTTP, webhooks and run events -------------------------------------------------------------------------------
    _e("http_listening", "info", "daemon", "host port webhooks", "The HTTP server (probes, metrics, webhooks) listens."),
    _e("http_failed", "error", "daemon", "error", "The HTTP server cannot start; the daemon exits 1.",
       "Free the port or fix http.host / http.port."),
    _e("webhook_received", "debug", "daemon", "action alias delivery_id entity model_name tick_requested version",
       "A verified webhook delivery."),
    _e("webhook_duplicate", "debug", "daemon", "delivery_id", "A delivery id seen before: answered 200, ignored."),
    _e("webhook_refused", "warning", "daemon", "age_seconds delivery_id reason status",
       "A delivery answered 400/401 (bad payload, signature, timestamp); nothing changed.",
       "Check the webhook's secret and the clocks if it repeats."),
    _e("run_event_received", "debug", "daemon", "delivery_id experiment_id experiments run_id status tick_requested",
       "A run event from the server plugin; the watches of its experiment get a tick."),
    _e("run_event_experiment_unknown", "debug", "daemon", "error experiment_id",
       "A run event names an experiment that could not be looked up; the poll is the backstop."),
    _e("webhook_installed", "info", "cli", "created duplicates_deleted events url webhook_id",
       "webhooks install created or updated the MLflow webhook."),
    _e("webhook_uninstalled", "info", "cli", "url webhook_id", "webhooks uninstall deleted the MLflow webhook."),
    # ---- check-config and once ----------------------------------------------------------------------------------------
    _e("config_sources", "info", "cli", "env_overrides precedence tracking_uri",
       "check-config: where each setting comes from (file, environment)."),
    _e("config_ok", "info", "cli", "experiment experiment_exists experiment_id gates model_name scoring source",
       "check-config: one watch it would make (source: config, or the experiment tag and profile)."),
    _e("lock_database_ok", "info", "cli", "", "check-config: the ha lock database answers."),
    _e("lock_database_unreachable", "error", "cli", "error", "check-config: the ha lock database does not answer.",
       "Check the lock database and ha.dsn."),
    _e("scoring_input_missing", "error", "cli", "input model_name", "check-config: a watch's scoring input does not exist.",
       "Fix scoring.input or provide the file."),
    _e("once_acted_on_nothing", "error", "cli", "reason",
       "once with ha could not reach the lock database and acted on nothing (exit 1).", "Check the lock database."),
)

_ALL = (*_EVENTS, *fleet.EVENTS, *approvals.EVENTS, *outgoing.EVENTS, *console.EVENTS)
CATALOGUE: Mapping[str, EventSpec] = MappingProxyType({spec.name: spec for spec in _ALL})
"""Event name -> its declaration, in the order of the docs' reference (each capability's own events, from
``watcher.obs.catalogue``, after the core's)."""
__all__ = ["CATALOGUE", "EMITTERS", "LEVELS", "EventSpec"]
LEVELS = ("debug", "info", "warning", "error", "critical")
EMITTERS = ("daemon", "cli", "both")
