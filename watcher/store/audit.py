"""The audit trail of alias moves: one MLflow run per move in the audit experiment.

Every move of a watched alias (a ``promote``, a ``rollback``, a move made outside the watcher and
seen by the daemon, a removal) is one run in ``audit_experiment`` (default
``registry-watcher-audit``), tagged ``watcher.kind=audit`` and ``watcher.audit.*``: model, alias,
from and to version, actor (``by``), action, reason (full text up to MLflow's 8,000-character tag
limit, longer cut with a marker), forced flag and time. It shows in the MLflow UI and is searchable
by model (``tags.`watcher.audit.model` = 'M'``). Nothing is ever trimmed.

Ordering is total and needs no read-modify-write of a shared value: entries sort by the run's
``start_time`` (ms), then a migrated entry's old ``seq``, then the run id; the run id is the
entry's stable ``id`` (scoring is keyed on it). Two writers (the CLI and the daemon) each create
their own run, so neither can overwrite the other.

A run's status is the entry's state: ``RUNNING`` is an *intent* (``promote`` writes it before it
moves the alias, then finishes it), ``FINISHED`` a recorded move, ``KILLED`` an intent abandoned
before its alias moved (it is not part of the history). Every entry records the process that
wrote it (``watcher.audit.host``, ``.pid``, ``.process_start``): the daemon finishes someone
else's intent only once that process is gone, or the intent is old (``watcher.engine.policy``).

Entries are :class:`AuditEntry` values (frozen). The legacy ``watcher.production_history`` tag is
carried into the trail by ``watcher.store.migration``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus

from watcher.obs import process
from watcher.obs.process import ProcessId
from watcher.store import experiments, keys
from watcher.store.codec import now_iso, truncate
from watcher.store.paging import items

STATUS = {"RUNNING": "pending", "FINISHED": "done", "KILLED": "abandoned"}
ALL_STATES = tuple(STATUS.values())
PAGE = 1000


@dataclass(frozen=True)
class AuditEntry:
    """One alias move (or an intent to make one), as the audit run records it."""

    id: str
    """The audit run's id: stable, so scoring is keyed on it."""
    model: str | None
    alias: str | None
    version: str | None
    """The version the alias points at after the move; None when it was removed."""
    previous: str | None
    at: str
    """ISO-8601 UTC time of the move."""
    by: str
    """Who: the CLI user, ``watcher`` (the daemon's own moves) or ``external``."""
    action: str
    """``promote``, ``rollback``, ``stage``, ``observed``, ``removed``, ``adopted``, ``revert``, ..."""
    reason: str
    forced: bool
    status: str
    """``pending`` (an intent), ``done`` (a recorded move) or ``abandoned``."""
    start_ms: int
    legacy_seq: int | None = None
    """The ``seq`` of a legacy history entry this one was carried over from."""
    seq: int | None = None
    """Position in the history, 1 = oldest (set by :func:`entries`)."""
    writer: ProcessId | None = None
    """The process that wrote it (host, pid, start time); None for entries written before it was recorded."""
    approval: str | None = None
    """Versioned JSON naming the signed approval record behind the move (issue 27), else None."""

    @property
    def approval_ref(self) -> str | None:
        """``request:<id>`` or ``break_glass:<id>``: the record the move claims (checked by ``watcher.approvals``)."""
        ref = _approval(self.approval).get("ref")
        return ref if isinstance(ref, str) else None

    def public(self) -> dict[str, Any]:
        """The entry as ``history --json`` shows it (no internal sort fields)."""
        shown: dict[str, Any] = {"id": self.id, "alias": self.alias, "version": self.version,
                                 "previous": self.previous, "at": self.at, "by": self.by, "action": self.action,
                                 "reason": self.reason, "forced": self.forced}
        if self.legacy_seq is not None:
            shown["legacy_seq"] = self.legacy_seq
        if self.seq is not None:
            shown["seq"] = self.seq
        approval = _approval(self.approval)
        for key in ("requested_by", "approved_by", "approvals", "ref"):
            if key in approval:
                shown["approval" if key == "ref" else key] = approval[key]
        return shown


def _approval(text: str | None) -> dict[str, Any]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def audit_experiment_id(client: MlflowClient, name: str, create: bool = True) -> str | None:
    """The audit experiment's id; created (tagged ``watcher.kind=audit``) when missing and ``create``."""
    if create:
        return experiments.get_or_create(client, name, keys.KIND_AUDIT, "audit_experiment")
    return experiments.find(client, name, deleted="audit_experiment")


class AuditTrail:
    """The audit experiment of one step (a tick's alias step, a CLI verb), passed along by name.
    Its id is resolved through the one experiment cache (:data:`watcher.store.experiments.IDS`,
    keyed by tracking URI and name): one request per server, none after, and a client of another
    server (a reload to another ``tracking_uri``) gets that server's id. A missing experiment is
    looked up again at the next read (another writer, the CLI's first promote, may create it
    meanwhile); :meth:`ensure` creates it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find(self, client: MlflowClient) -> str | None:
        """The id, or None while the experiment does not exist."""
        return audit_experiment_id(client, self.name, create=False)

    def ensure(self, client: MlflowClient) -> str:
        """The id, the experiment created when missing (before the first entry is written)."""
        return audit_experiment_id(client, self.name, create=True) or ""


def trail(experiment: AuditTrail | str) -> AuditTrail:
    """The trail of ``experiment`` (a name, or a trail already resolved, passed through)."""
    return experiment if isinstance(experiment, AuditTrail) else AuditTrail(experiment)


@dataclass(frozen=True)
class AliasMove:
    """What one audit entry records: an alias move (or the intent to make one), before it is written."""

    model_name: str
    alias: str
    version: str | None
    previous: str | None
    by: str
    action: str
    reason: str
    forced: bool = False
    at_ms: int | None = None
    """When the move was made (epoch ms); None: now."""
    legacy_seq: int | None = None
    """The ``seq`` of the legacy history entry carried over (``watcher.store.migration``)."""
    approval: str | None = None
    """Versioned JSON: the approval record behind the move, its requester, approvers, comments (issue 27)."""


def _entry(run: Run) -> AuditEntry:
    tags = run.data.tags
    legacy = tags.get(keys.AUDIT_LEGACY_SEQ)
    return AuditEntry(
        id=run.info.run_id, model=tags.get(keys.AUDIT_MODEL), alias=tags.get(keys.AUDIT_ALIAS),
        version=tags.get(keys.AUDIT_VERSION) or None, previous=tags.get(keys.AUDIT_PREVIOUS) or None,
        at=tags.get(keys.AUDIT_AT) or now_iso(run.info.start_time), by=tags.get(keys.AUDIT_BY, ""),
        action=tags.get(keys.AUDIT_ACTION, ""), reason=tags.get(keys.AUDIT_REASON, ""),
        forced=tags.get(keys.AUDIT_FORCED) == "true", status=STATUS.get(run.info.status, run.info.status.lower()),
        start_ms=run.info.start_time or 0, legacy_seq=int(legacy) if legacy else None, writer=_writer(tags),
        approval=tags.get(keys.AUDIT_APPROVAL),
    )


def _writer(tags: dict[str, str]) -> ProcessId | None:
    pid = tags.get(keys.AUDIT_PID, "")
    host = tags.get(keys.AUDIT_HOST)
    if not host or not pid.isdigit():
        return None
    return ProcessId(host, int(pid), tags.get(keys.AUDIT_PROCESS_START, ""))


def order(found: list[AuditEntry]) -> list[AuditEntry]:
    """Total order: start time, then a migrated entry's old seq, then the run id; dedupe migrations."""
    ordered = sorted(found, key=lambda e: (e.start_ms, e.legacy_seq or 0, e.id))
    seen: set[int] = set()
    kept = []
    for entry in ordered:
        if entry.legacy_seq is not None:
            if entry.legacy_seq in seen:
                continue  # two processes migrated at once: the first copy counts
            seen.add(entry.legacy_seq)
        kept.append(entry)
    return kept


def _filter(model_name: str, alias: str) -> str:
    return f"tags.`{keys.AUDIT_MODEL}` = '{model_name}' AND tags.`{keys.AUDIT_ALIAS}` = '{alias}'"


def entries(client: MlflowClient, experiment: AuditTrail | str, model_name: str, alias: str,
            include: tuple[str, ...] = ("done",)) -> list[AuditEntry]:
    """Every entry of ``model_name``'s ``alias``, oldest first, numbered ``seq`` 1..n (``done`` only by default)."""
    exp_id = trail(experiment).find(client)
    if exp_id is None:
        return []
    found = [_entry(run) for run in items(client.search_runs, [exp_id], _filter(model_name, alias), max_results=PAGE,
                                          order_by=["attributes.start_time ASC"])]
    kept = [e for e in order(found) if e.status in include]
    return [replace(entry, seq=seq) for seq, entry in enumerate(kept, 1)]


def recent(client: MlflowClient, experiment: AuditTrail | str, model_name: str, alias: str,
           n: int = 10) -> list[AuditEntry]:
    """The newest ``n`` entries in any state (intents included), oldest first: one request."""
    exp_id = trail(experiment).find(client)
    if exp_id is None:
        return []
    runs = client.search_runs([exp_id], _filter(model_name, alias), max_results=n,
                              order_by=["attributes.start_time DESC"])
    return order([_entry(run) for run in runs])


def open_intents(client: MlflowClient, experiment: AuditTrail | str, by: str) -> list[AuditEntry]:
    """Every intent (a RUNNING entry) written by ``by``, over all models, oldest first."""
    exp_id = trail(experiment).find(client)
    if exp_id is None:
        return []
    query = f"tags.`{keys.AUDIT_BY}` = '{by}' AND attributes.status = 'RUNNING'"
    return order([_entry(run) for run in items(client.search_runs, [exp_id], query, max_results=PAGE,
                                               order_by=["attributes.start_time ASC"])])


def begin(client: MlflowClient, experiment: AuditTrail | str, move: AliasMove) -> AuditEntry:
    """Create the entry as an intent (a RUNNING run); :func:`finish_intent` makes it a recorded move."""
    at = now_iso(move.at_ms)
    reason = truncate(move.reason or "", keys.RUN_TAG_LIMIT)
    tags = {keys.KIND: keys.KIND_AUDIT, keys.AUDIT_MODEL: move.model_name, keys.AUDIT_ALIAS: move.alias,
            keys.AUDIT_VERSION: move.version or "", keys.AUDIT_PREVIOUS: move.previous or "", keys.AUDIT_BY: move.by,
            keys.AUDIT_ACTION: move.action, keys.AUDIT_REASON: reason,
            keys.AUDIT_FORCED: "true" if move.forced else "false", keys.AUDIT_AT: at,
            keys.NOTE: reason or f"{move.action} by {move.by}"}
    writer = process.current()  # so that the daemon finishes this intent only once its writer is gone
    tags.update({keys.AUDIT_HOST: writer.host, keys.AUDIT_PID: str(writer.pid), keys.AUDIT_PROCESS_START: writer.started})
    if move.legacy_seq is not None:
        tags[keys.AUDIT_LEGACY_SEQ] = str(move.legacy_seq)
    if move.approval is not None:
        tags[keys.AUDIT_APPROVAL] = move.approval[: keys.RUN_TAG_LIMIT]
    name = f"{move.model_name} {move.alias}: v{move.previous or '-'} -> v{move.version or '-'} ({move.action})"
    run = client.create_run(trail(experiment).ensure(client), start_time=move.at_ms, tags=tags, run_name=name)
    return _entry(run)


def finish_intent(client: MlflowClient, entry: AuditEntry) -> AuditEntry:
    """Mark an intent as a recorded move (idempotent: the CLI and the daemon may both call it)."""
    client.set_terminated(entry.id, RunStatus.to_string(RunStatus.FINISHED), end_time=None)
    return replace(entry, status="done")


def abandon(client: MlflowClient, entry: AuditEntry) -> None:
    """An intent whose alias never moved: KILLED, so it is not part of the history."""
    client.set_terminated(entry.id, RunStatus.to_string(RunStatus.KILLED))


def record(client: MlflowClient, experiment: AuditTrail | str, move: AliasMove) -> AuditEntry:
    """Create and finish an entry (a move already made, e.g. one observed by the daemon)."""
    return finish_intent(client, begin(client, experiment, move))


def from_run(run: Run) -> AuditEntry:
    """The entry one run of the audit experiment records (for readers that search the trail themselves)."""
    return _entry(run)
