"""From facts recorded in MLflow to outgoing events: the same fact always gives the same event.

* ``run.decided``: a run's decision tags (``registered`` or ``rejected``; ``error`` is not an event);
  key ``run:<run id>``, time = ``watcher.decided_at`` (ms), sequence = that time, then the run's end time.
* ``alias.moved``: an audit entry (``watcher.store.audit``), ``done``, or ``pending`` while its alias
  points at its version (a move whose record a crash left open counts as committed, so a move
  interrupted by a kill -9 and finished later has one id); key ``audit:<entry id>``, time = the
  entry's start (ms), sequence = that time, then the version.
* ``scoring.finished``: a scoring run that ended; key ``scoring:<run id>``, time = its end.
* ``approval.changed``: each state an approval request reached (``watcher.events.approval_facts``),
  read through the process's approvals board when it has one.

:class:`Deriver` reads them (``watcher.store.event_facts``, the audit trail): after a tick (the
tick's decided run ids, the audit entries and scoring runs since its watermarks, minus an overlap)
or, at start-up, everything of the last ``events.rederive_seconds`` (what a kill -9 between a
fact and its append left out; appending is idempotent by id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.config.events import EVENT_TYPE_PREFIX, default_source
from watcher.events.approval_facts import approval_events
from watcher.events.model import OutgoingEvent, event_id, sequence_of
from watcher.store import batch_reads, event_facts, experiments, registry
from watcher.store.audit import AuditEntry
from watcher.store.event_facts import Decision, Scoring

if TYPE_CHECKING:
    from watcher.approvals.board import Board

OVERLAP_MS = 300_000
"""Audit entries and scoring runs up to 5 minutes before the newest seen are read again (a lagging
clock, an intent finished since): re-appending is a no-op."""
EXTERNAL = "external"
DECISIONS = ("registered", "rejected")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _event(source: str, short: str, key: str, model: str, subject: str, ms: int, then: int,
           data: dict[str, object]) -> OutgoingEvent:
    return OutgoingEvent(id=event_id(short, key), type=EVENT_TYPE_PREFIX + short, source=source, subject=subject,
                         time=_at(ms), sequence=sequence_of(ms, then), model=model, data=data)


def decision_event(source: str, fact: Decision, model: str) -> OutgoingEvent:
    """``run.decided`` of one decided run."""
    reasons = [r.strip() for r in fact.reason.split("; ") if r.strip()] if fact.decision == "rejected" else []
    gates = [{"name": g.get("gate"), "passed": bool(g.get("passed")), "detail": g.get("reason")} for g in fact.gates]
    data: dict[str, object] = {"run_id": fact.run_id, "experiment_id": fact.experiment_id, "model": model,
                               "decision": fact.decision, "version": fact.version, "reasons": reasons, "gates": gates}
    return _event(source, "run.decided", f"run:{fact.run_id}", model, f"{model}/runs/{fact.run_id}",
                  fact.decided_ms, fact.end_ms, data)


def move_event(source: str, entry: AuditEntry) -> OutgoingEvent:
    """``alias.moved`` of one audit entry."""
    model = entry.model or ""
    data: dict[str, object] = {
        "model": model, "alias": entry.alias, "version": entry.version, "previous_version": entry.previous,
        "moved_by": None if entry.by in ("", EXTERNAL) else entry.by, "reason": entry.reason or None,
        "action": entry.action, "model_uri": f"models:/{model}/{entry.version}" if entry.version else None}
    version = int(entry.version) if entry.version is not None and entry.version.isdigit() else 0
    return _event(source, "alias.moved", f"audit:{entry.id}", model, model, entry.start_ms, version, data)


def scoring_event(source: str, fact: Scoring) -> OutgoingEvent:
    """``scoring.finished`` of one scoring run."""
    data: dict[str, object] = {"model": fact.model, "version": fact.version, "rows": fact.rows, "output": fact.output,
                               "duration_seconds": fact.seconds, "status": fact.status, "run_id": fact.run_id}
    if fact.error:
        data["error"] = fact.error
    version = int(fact.version) if fact.version.isdigit() else 0
    return _event(source, "scoring.finished", f"scoring:{fact.run_id}", fact.model,
                  f"{fact.model}/versions/{fact.version}", fact.end_ms, version, data)


def committed(entries: Sequence[AuditEntry], aliases: dict[str, dict[str, str]]) -> list[AuditEntry]:
    """The entries that are moves: done ones, and pending ones whose alias points at their version
    (the newest entry of that alias only: an intent a crash left open and a redo overtook is not a
    second move); ``aliases``: model -> alias -> version."""
    newest: dict[tuple[str, str], AuditEntry] = {}
    for entry in entries:
        if entry.status in ("pending", "done") and entry.model and entry.alias:
            key = (entry.model, entry.alias)
            if key not in newest or (entry.start_ms, entry.id) > (newest[key].start_ms, newest[key].id):
                newest[key] = entry
    kept = [e for e in entries if e.status == "done" and e.model and e.alias]
    for (model, alias), entry in newest.items():
        if entry.status == "pending" and entry.version is not None and aliases.get(model, {}).get(alias) == entry.version:
            kept.append(entry)
    return kept


class Deriver:
    """Reads the facts behind events, with watermarks kept across ticks (one per process)."""

    def __init__(self, client: MlflowClient, config: WatcherConfig, watches: Iterable[WatchConfig],
                 board: Callable[[], Board | None] = lambda: None) -> None:
        assert config.events is not None
        self._client = client
        self._board = board
        self._config = config
        self._watches = list(watches)
        self.source = config.events.source or default_source(config.tracking_uri)
        self._audit_mark: int | None = None
        self._scoring_mark: int | None = None

    def set_watches(self, watches: Iterable[WatchConfig]) -> None:
        """The effective watch set (configured and discovered) changed."""
        self._watches = list(watches)

    def _model_of(self) -> dict[str, str]:
        return {w.experiment: w.model_name for w in self._watches}

    def _experiment_ids(self, names: Iterable[str]) -> dict[str, str]:
        found = {}
        for name in set(names):
            exp_id = experiments.find(self._client, name)
            if exp_id is not None:
                found[exp_id] = name
        return found

    def startup(self, now_ms: int | None = None) -> list[OutgoingEvent]:
        """Every fact of the last ``rederive_seconds``."""
        assert self._config.events is not None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        since = now_ms - int(self._config.events.rederive_seconds * 1000)
        self._audit_mark = self._scoring_mark = since + OVERLAP_MS
        ids = self._experiment_ids(w.experiment for w in self._watches)
        facts = event_facts.decided_runs(self._client, list(ids), since_end_ms=since)
        return self._decision_events(facts, ids) + self.moves() + self.scorings() + self.approvals()

    def tick_facts(self, run_ids: dict[str, list[str]]) -> list[OutgoingEvent]:
        """The decisions of a tick (experiment name -> decided run ids), then new moves and scorings."""
        events: list[OutgoingEvent] = []
        if run_ids:
            ids = self._experiment_ids(run_ids)
            wanted = [r for runs in run_ids.values() for r in runs]
            events += self._decision_events(event_facts.decided_runs(self._client, list(ids), run_ids=wanted), ids)
        return events + self.moves() + self.scorings() + self.approvals()

    def live_events(self, facts: Iterable[AuditEntry | Decision]) -> list[OutgoingEvent]:
        """The events of facts the engine told as it committed them (no request): a staging move's
        audit entry, a run's decision; the same events as a read of those facts gives."""
        events: list[OutgoingEvent] = []
        for fact in facts:
            if isinstance(fact, AuditEntry):
                events += [move_event(self.source, fact)] if fact.model and fact.alias else []
            elif fact.decision in DECISIONS and fact.model:  # the engine always records the model
                events.append(decision_event(self.source, fact, fact.model))
        return events

    def _decision_events(self, facts: Sequence[Decision], ids: dict[str, str]) -> list[OutgoingEvent]:
        models = self._model_of()
        events = []
        for fact in facts:
            model = fact.model or models.get(ids.get(fact.experiment_id, ""), "")
            if fact.decision in DECISIONS and model:
                events.append(decision_event(self.source, fact, model))
        return events

    def moves(self) -> list[OutgoingEvent]:
        """``alias.moved`` of the audit entries since the watermark (minus the overlap)."""
        since = None if self._audit_mark is None else self._audit_mark - OVERLAP_MS
        found = batch_reads.audit_since(self._client, self._config.audit_experiment, since)
        if found:
            newest = max(e.start_ms for e in found)
            self._audit_mark = min(max(self._audit_mark or 0, newest), int(time.time() * 1000))
        aliases: dict[str, dict[str, str]] = {}
        pending = {e.model for e in found if e.status == "pending" and e.model}
        if pending:
            models = batch_reads.models_by_name(self._client, pending)
            aliases = {name: registry.aliases_of(model) for name, model in models.items()}
        return [move_event(self.source, e) for e in self._without_untrusted(committed(found, aliases))]

    def _without_untrusted(self, moves: list[AuditEntry]) -> list[AuditEntry]:
        """Without the production moves of approval watches that no signed record backs (a forged
        audit entry is no ``alias.moved``; a real unapproved move is the policy's ``production_unapproved``)."""
        board = self._board()
        if board is None or not moves:
            return moves
        from watcher.engine.approved import untrusted_moves

        drop = untrusted_moves(board, moves, self._config.audit_experiment)
        return [e for e in moves if e.id not in drop]

    def approvals(self) -> list[OutgoingEvent]:
        """``approval.changed`` of every request of the models with approvals (their records, read
        only: one request per such model), when the process has an approvals board."""
        board = self._board()
        if board is None:
            return []
        return [event for watch in board.approval_watches()
                for event in approval_events(self.source, board.model_views(watch.model_name, settle=False))]

    def scorings(self) -> list[OutgoingEvent]:
        """``scoring.finished`` of the scoring runs that ended since the watermark (minus the overlap)."""
        names = [w.scoring_experiment for w in self._watches if w.scoring_experiment]
        if not names:
            return []
        now = int(time.time() * 1000)
        since = (now if self._scoring_mark is None else self._scoring_mark) - OVERLAP_MS
        found = event_facts.scoring_runs(self._client, list(self._experiment_ids(n for n in names if n)), since)
        if found:
            self._scoring_mark = min(max(self._scoring_mark or 0, *(f.end_ms for f in found)), now)
        return [scoring_event(self.source, f) for f in found]
