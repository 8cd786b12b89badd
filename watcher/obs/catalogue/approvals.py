"""Log events of Approvals (issue 27)."""

from __future__ import annotations

from watcher.obs.event_spec import EventSpec
from watcher.obs.event_spec import event_spec as _e

_FORGED = ("Check who can edit the registry; delete the tag. A record whose signature fails never counts "
           "(see docs: approvals, what signing does not prevent).")
EVENTS: tuple[EventSpec, ...] = (
    _e("approval_requested", "info", "daemon", "by expires_at model_name request_id required version",
       "A verified caller asked for a production move; the version waits for approvals (production did not move)."),
    _e("approval_granted", "info", "daemon", "approvals by model_name request_id required version",
       "A named approver's vote counted (one per person)."),
    _e("approval_refused", "warning", "daemon", "action by model_name reason request_id status version",
       "A request, vote, withdrawal or break-glass rollback was refused (unverified, not allowed, wrong state).",
       "Nothing, unless it repeats: the reason says what the caller did wrong."),
    _e("approval_rejected", "info", "daemon", "by comment model_name request_id version",
       "A named approver rejected the request; it is over."),
    _e("approval_withdrawn", "info", "daemon", "by model_name request_id version", "The requester withdrew the request."),
    _e("approval_expired", "warning", "daemon", "model_name request_id requested_at version",
       "A request was not completed within expire_after_hours; it is over.", "Request again if the move is still wanted."),
    _e("approval_superseded", "info", "daemon", "model_name request_id superseded_by version",
       "A request for another version of the model ended this pending one."),
    _e("approval_applied", "info", "daemon", "approved_by entry_id model_name request_id requested_by version",
       "The required approvals were in: the daemon moved production; the history names the requester and approvers."),
    _e("approval_apply_failed", "error", "daemon", "model_name reason request_id version",
       "An approved request could not be applied (the version was deleted, a gate now refuses); it is failed.",
       "Read the reason; fix it and request again."),
    _e("production_unapproved", "error", "daemon", "entry_id model_name policy version",
       "Production moved without a signed approved request or break-glass record behind it (a hand edit, an "
       "older CLI's promote, an audit entry written by hand); policy revert undoes it.",
       "Find out who moved it; promote through the approvals API."),
    _e("approval_record_forged", "error", "daemon", "key model_name version",
       "An approval record's signature failed (a tag written by hand, or another signing key): it is ignored.",
       _FORGED),
    _e("production_rolled_back_break_glass", "error", "daemon", "by entry_id model_name previous_version reason version",
       "A named approver rolled production back at once (break-glass), recorded as a signed record.",
       "Review the reason with the team; this path skips the second approver."),
    _e("approval_baseline_set", "warning", "daemon", "model_name",
       "Approvals took effect on the model here: moves recorded up to its newest audit entry now are not vetted "
       "(written once, before the model's first approval record).", "None."),
    _e("approval_baseline_missing", "error", "daemon", "model_name",
       "The model has approval records but its signed baseline tag is gone or forged: no move made before "
       "approvals is trusted any more (policy revert may undo production to the last approved move).",
       "Investigate who deleted or edited the tag; the baseline is never written again for this model."),
    _e("approval_setup_refused", "error", "cli", "reason",
       "The daemon refused to start: approvals need the signing key, and TLS (or allow_insecure) off loopback; exit 2.",
       "Set $REGISTRY_WATCHER_SIGNING_KEY (>= 32 characters) or the http TLS keys, as the reason says."),
    _e("approval_api_insecure", "warning", "cli", "host",
       "The approvals API is served over plain HTTP off loopback (http.allow_insecure): passwords and tokens travel "
       "in clear unless a proxy terminates TLS.", "Configure http.tls_certfile/tls_keyfile, or a TLS proxy."),
)
