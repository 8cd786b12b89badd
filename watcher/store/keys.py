"""Every MLflow tag key the watcher reads or writes, in one place.

Durable state lives as tags on the objects it concerns:

* run tags: the decision and its reasons (what a person reads in the MLflow UI), the attempt
  counter, and on the watcher's own runs (audit trail, scoring) their kind;
* model version tags: governance, gate verdicts, lineage and the promotion record;
* registered model tags: the per-experiment cursor, the scoring record and failure, the legacy
  history and its migration marker;
* audit runs: ``watcher.audit.*`` (one run per alias move).

Every JSON value carries a ``version`` field (``watcher.store.codec``) so the format can evolve.
Names are a public interface (dashboards, searches and other tools depend on them): add, never rename.
"""

from __future__ import annotations

# run tags
DECISION = "watcher.decision"
REASON = "watcher.reason"
MODEL_VERSION = "watcher.model_version"
GATES = "watcher.gates"
DECIDED_AT = "watcher.decided_at"
KIND = "watcher.kind"
"""``scoring`` / ``audit`` on runs (and experiments) the watcher logs itself; never candidates."""
WATCH_MODEL = "watcher.model_name"
"""The registered model of the watch that decided the run."""
ATTEMPTS = "watcher.attempts"
"""Versioned JSON ``{count, last_error, at}``: failed attempts not the run's own fault."""
KIND_SCORING = "scoring"
KIND_AUDIT = "audit"
OWN_KINDS = (KIND_SCORING, KIND_AUDIT)

# model version tags (lineage and promotion)
SOURCE_RUN_ID = "watcher.source_run_id"
RUN_NAME = "watcher.run_name"
RUN_END_TIME = "watcher.run_end_time"
EXPERIMENT = "watcher.experiment"
EXPERIMENT_ID = "watcher.experiment_id"
METRICS = "watcher.metrics"
REGISTERED_AT = "watcher.registered_at"
PROMOTED_AT = "watcher.promoted_at"
PROMOTED_BY = "watcher.promoted_by"
PROMOTION_REASON = "watcher.promotion_reason"
PROMOTION_ACTION = "watcher.promotion_action"
PROMOTION_FORCED = "watcher.promotion_forced"
"""``true`` when ``--force`` overrode a refusal."""

# registered model tags
CURSOR_PREFIX = "watcher.cursor."
HISTORY = "watcher.production_history"
"""Legacy: read once at start-up and carried into the audit trail."""
AUDIT_MIGRATED = "watcher.audit_migrated"
SCORED = "watcher.scoring"
SCORING_FAILURE = "watcher.scoring_failure"
PROMPT = "mlflow.prompt.is_prompt"
"""MLflow marks a prompt (a registered model of another kind) with it; the watcher never writes to one."""

# audit runs (one per alias move)
AUDIT_PREFIX = "watcher.audit."
AUDIT_MODEL = AUDIT_PREFIX + "model"
AUDIT_ALIAS = AUDIT_PREFIX + "alias"
AUDIT_VERSION = AUDIT_PREFIX + "version"
AUDIT_PREVIOUS = AUDIT_PREFIX + "previous"
AUDIT_BY = AUDIT_PREFIX + "by"
AUDIT_ACTION = AUDIT_PREFIX + "action"
AUDIT_REASON = AUDIT_PREFIX + "reason"
AUDIT_FORCED = AUDIT_PREFIX + "forced"
AUDIT_AT = AUDIT_PREFIX + "at"
AUDIT_LEGACY_SEQ = AUDIT_PREFIX + "legacy_seq"
AUDIT_HOST = AUDIT_PREFIX + "host"
"""The host name of the process that wrote the entry (the hand-off of an intent checks it)."""
AUDIT_PID = AUDIT_PREFIX + "pid"
"""Its pid on that host."""
AUDIT_PROCESS_START = AUDIT_PREFIX + "process_start"
"""Its start time (Linux ``/proc/<pid>/stat`` starttime), so a reused pid is not taken for it."""
AUDIT_APPROVAL = AUDIT_PREFIX + "approval"
"""Versioned JSON naming the signed record that backs the move (``request:<id>`` or ``break_glass:<id>``),
its requester, approvers and their comments (issue 27); absent on moves without approvals."""
NOTE = "mlflow.note.content"
"""The run description in the MLflow UI."""

# scoring runs
SCORING_KEY = "watcher.production_seq"
"""``<model>:<audit entry id>``: which production move a scoring run scores (adopted after a crash)."""
SCORING_OUTPUT = "watcher.output"
SCORING_ERROR = "watcher.error"
SCORING_MODEL_NAME = "model_name"
SCORING_MODEL_VERSION = "model_version"
SCORING_MODEL_ALIAS = "model_alias"

# limits of MLflow's columns
RUN_TAG_LIMIT = 8000
"""MLflow's run tag value limit."""
MODEL_TAG_LIMIT = 5000
"""Registered model and version tag values (VARCHAR(5000) on PostgreSQL)."""


def cursor_key(experiment_id: str) -> str:
    """Registered model tag holding the end-time cursor of one experiment."""
    return f"{CURSOR_PREFIX}{experiment_id}"

# experiment tags read by discovery (``discover``; their names are configurable, these are the defaults)
DISCOVER_MODEL = "registry-watcher.model"
"""An experiment carrying it is watched; its value is the registered model's name."""
DISCOVER_PROFILE = "registry-watcher.profile"
"""Names the ``profiles`` entry a discovered watch takes (no tag: ``default``)."""

# model ownership and onboarding (issue 26)
SOURCE_EXPERIMENT = "registry-watcher.source_experiment"
"""Registered model tag: the id of the experiment that feeds the model (its claim); another
discovered experiment tagged with the model is refused. Moved on purpose by ``claim``."""
FIRST_SEEN = "registry-watcher.first_seen"
"""Experiment tag, versioned JSON ``{model, at_ms}``: when the watcher first saw the experiment
tagged with that model (a discovered watch starts there, ``discover.backfill``)."""
ONBOARDING_PREFIX = "watcher.onboarding."
"""Registered model tag per discovered experiment, versioned JSON ``{from_ms, until_ms}``: runs
that ended before ``from_ms`` are never candidates; those before ``until_ms`` are a backfill."""
AUDIT_OWNER_FROM = AUDIT_PREFIX + "owner_from"
"""On a ``claim`` audit entry: the experiment (``name (id)``) that fed the model before."""
AUDIT_OWNER_TO = AUDIT_PREFIX + "owner_to"
"""On a ``claim`` audit entry: the experiment (``name (id)``) that feeds it from now on."""


def onboarding_key(experiment_id: str) -> str:
    """Registered model tag holding one discovered experiment's onboarding window."""
    return f"{ONBOARDING_PREFIX}{experiment_id}"

# approvals (issue 27): signed, append-only records as model version tags, one per request / vote / outcome
APPROVAL_PREFIX = "watcher.approval."
"""``watcher.approval.<request id>.<kind>[.<voter hash>]``: versioned JSON signed with the daemon's key."""
APPROVAL_BASELINE = "watcher.approval_baseline"
"""Registered model tag: signed JSON of when approvals took effect (moves recorded before it are not vetted)."""
APPROVAL_UI_STATE = "watcher.approval_state"
"""Human-readable only (the MLflow UI): the newest request's state on the version; never trusted."""
APPROVAL_UI_BY = "watcher.approved_by"
"""Human-readable only: who approved, comma-separated; never trusted."""


def approval_key(request_id: str, kind: str, actor: str = "") -> str:
    """Model version tag of one approval record."""
    return f"{APPROVAL_PREFIX}{request_id}.{kind}" + (f".{actor}" if actor else "")

