"""Approvals in the tick (issue 27): apply approved requests, and vet what backs a production move.

:func:`apply_approved` runs on the replica holding the model's lock: each approved request not yet
applied moves production through the usual ``promote`` (gates re-checked), its audit entry naming the
request, requester, approvers and comments; the daemon then appends the signed ``applied`` outcome.
A crash between the move and the outcome is repaired: an audit entry already naming the request is
taken as the move (never applied twice). A move that cannot be made is ``failed`` with the reason.

:func:`vet` is the policy's guard: on a watch with ``approval``, a ``promote``/``rollback`` audit entry
(an intent or a recorded move) counts as the watcher's own only when it names a signed approved
request or break-glass record for that very version, and (once applied) is the very entry its signed
outcome names; a ``revert`` only when it goes back to where the trusted moves before it left production;
``observed``/``removed`` as external moves; anything else (``adopted``, ``stage``, none) never. An
untrusted entry is taken as an external move (so ``revert`` undoes it and ``production_unapproved`` is
logged). Entries up to the one named by the model's signed baseline (by run id, which a client cannot
choose, unlike a start time) predate approvals and stand, but only the own position then is a revert target.

:func:`break_glass` is a named approver's immediate rollback, under a signed break-glass record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from watcher.approvals.board import Backing, Baseline, Board
from watcher.approvals.identity import Caller
from watcher.approvals.records import ApprovalRecord, cap
from watcher.approvals.service import ApprovalService
from watcher.approvals.state import RequestView
from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import promotion
from watcher.engine.policy import EXTERNAL
from watcher.engine.session import Session
from watcher.obs import metrics_approvals as metrics
from watcher.obs.logs import get_logger
from watcher.store import approval_records as store
from watcher.store import audit, registry
from watcher.store.audit import AuditEntry

log = get_logger("watcher.approvals")
OWN_ACTIONS = ("promote", "rollback")
SETTLED = ("observed", "removed")
_UNAPPROVED_SAID: set[str] = set()
_BASELINE_SAID: set[str] = set()


def approval_json(ref: str, requested_by: str, view: RequestView | None) -> str:
    """The audit entry's ``watcher.audit.approval`` value (comments capped to keep it under the tag limit)."""
    votes = [{**v.as_json(), "comment": cap(v.comment, 600)} for v in (view.approvals if view else ())]
    return json.dumps({"version": 1, "ref": ref, "requested_by": requested_by,
                       "approved_by": [v["user"] for v in votes], "approvals": votes})


def _outcome(board: Board, view: RequestView, outcome: str, reason: str = "", entry_id: str = "") -> None:
    req = view.request
    rec = ApprovalRecord("outcome", req.request_id, req.model, req.model_version, "watcher", board.clock(), cap(reason),
                 outcome=outcome, entry_id=entry_id)
    try:
        store.append_record(board.client, req.model, req.model_version, rec.key, rec.signed(board.signer))
    except LookupError:
        pass  # the version is gone: the failure is in the log
    store.show_state(board.client, req.model, req.model_version, "approved" if outcome == "applied" else outcome,
                     [v.user for v in view.approvals])
    metrics.count_outcome("approved" if outcome == "applied" else outcome)


def ensure_baseline(client: MlflowClient, board: Board, watch: WatchConfig, audit_experiment: str) -> None:
    """Write the model's signed baseline the first time (before any approval record): the newest audit
    entry of production now and the version the watcher's own moves left it at. Never again once the
    model has approval records: a baseline gone or forged then trusts nothing from before approvals."""
    model = watch.model_name
    if board.signed_baseline(model) is not None:
        return
    if board.records(model):
        if model not in _BASELINE_SAID:
            _BASELINE_SAID.add(model)
            log.error("approval_baseline_missing", model_name=model)
        return
    done = audit.entries(client, audit_experiment, model, watch.production_alias)
    own = next((e for e in reversed(done) if e.by != EXTERNAL), None)
    board.write_baseline(model, Baseline(done[-1].id if done else "", own.version if own else None))


def _made(client: MlflowClient, watch: WatchConfig, audit_experiment: str, ref: str,
          version: str) -> tuple[AuditEntry | None, list[AuditEntry]]:
    """The entry of a move already made for ``ref`` (a crash before its outcome): one naming it while
    production points at its version; else (None, its intents that never moved the alias, to abandon)."""
    named = [e for e in audit.recent(client, audit_experiment, watch.model_name, watch.production_alias, 20)
             if e.approval_ref == ref and e.version == version and e.status in ("done", "pending")]
    if not named:
        return None, []
    current = registry.aliases_of(registry.get_model(client, watch.model_name)).get(watch.production_alias)
    if current != version:
        return None, [e for e in named if e.status == "pending"]
    return max(named, key=lambda e: (e.status == "done", e.start_ms)), []


def _apply_failed(board: Board, view: RequestView, exc: Exception) -> None:
    reason = getattr(exc, "message", None) or str(exc)
    _outcome(board, view, "failed", reason)
    log.error("approval_apply_failed", model_name=view.model_name, version=view.model_version, request_id=view.id,
              reason=reason)


def apply_approved(client: MlflowClient, board: Board, watch: WatchConfig, audit_experiment: str) -> list[str]:
    """Apply every approved request of ``watch``'s model not applied yet; returns the versions moved.
    Only a refusal (``PromotionError``) or a version gone makes a request ``failed``; any other error
    (an outage) is raised, and the next tick retries (a move already made is then found by :func:`_made`)."""
    moved = []
    ensure_baseline(client, board, watch, audit_experiment)
    for view in board.model_views(watch.model_name):
        if not view.awaiting_move:
            continue
        ref = f"request:{view.id}"
        done, stale = _made(client, watch, audit_experiment, ref, view.model_version)
        if done is not None:  # a crash after the move: the move stands, only the outcome was missing
            _outcome(board, view, "applied", entry_id=done.id)
            continue
        for intent in stale:
            audit.abandon(client, intent)
        try:
            entry = promotion.promote(client, watch, view.model_version, view.request.comment, view.request.by,
                                      audit_experiment=audit_experiment,
                                      approval=approval_json(ref, view.request.by, view))
        except promotion.PromotionError as exc:
            _apply_failed(board, view, exc)
            continue
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            _apply_failed(board, view, exc)
            continue
        _outcome(board, view, "applied", entry_id=entry.id)
        log.info("approval_applied", model_name=view.model_name, version=view.model_version, request_id=view.id,
                 requested_by=view.request.by, approved_by=[v.user for v in view.approvals], entry_id=entry.id)
        moved.append(view.model_version)
    return moved


def _backed(backing: Backing, entry: AuditEntry, used: set[str]) -> bool:
    """Whether a signed record backs this promote/rollback entry: its version, and the very entry of an
    applied request or used break-glass record; an awaiting one backs intents and its first recorded move."""
    ref = entry.approval_ref
    found = backing.refs.get(ref) if ref is not None else None
    if ref is None or found is None or found[0] != entry.version:
        return False
    if found[1]:
        return entry.id == found[1]
    if entry.status != "done":
        return True
    if ref in used:
        return False
    used.add(ref)
    return True


def _walk(backing: Backing, entries: Sequence[AuditEntry]) -> list[tuple[AuditEntry, bool]]:
    """Each entry (oldest first) with whether it is trusted; ``observed``/``removed`` ones made external."""
    base = backing.baseline
    before = base is not None and any(e.id == base.entry_id for e in entries)
    position: str | None = None  # where the trusted own moves left the alias (a revert's only target)
    used: set[str] = set()
    out = []
    for item in entries:
        entry, ok = item, True
        if before and base is not None:  # up to the baseline entry: moves made before approvals, as they
            if entry.version != base.own:  # were, but only the own position then is a revert target
                entry = replace(entry, by=EXTERNAL)
            before, position = entry.id != base.entry_id, base.own
        elif entry.action in SETTLED:
            entry = replace(entry, by=EXTERNAL)
        elif entry.action in OWN_ACTIONS:
            ok = _backed(backing, entry, used)
        else:
            ok = entry.action == "revert" and entry.version == position
        if ok and entry.status == "done" and entry.by != EXTERNAL:
            position = entry.version
        out.append((entry, ok))
    return out


def checked(board: Board, watch: WatchConfig, entries: Sequence[AuditEntry],
            history: Callable[[], Sequence[AuditEntry]] | None = None) -> list[tuple[AuditEntry, bool]]:
    """``entries`` (oldest first; a window of the trail when ``history`` loads the whole of it) each with
    whether the policy may trust it. A revert is judged on the whole trail (where the moves before left it)."""
    backing = board.backing(watch.model_name)
    if history is not None and any(e.action == "revert" for e in entries):
        wanted = {e.id for e in entries}
        merged = audit.order(list({e.id: e for e in [*history(), *entries]}.values()))
        return [pair for pair in _walk(backing, merged) if pair[0].id in wanted]
    return _walk(backing, entries)


def vet(board: Board, watch: WatchConfig, entries: Sequence[AuditEntry],
        history: Callable[[], Sequence[AuditEntry]] | None = None) -> list[AuditEntry]:
    """``entries`` (oldest first) as the policy may trust them: an untrusted one becomes an external
    move (a recorded move) or is dropped (an intent)."""
    kept = []
    for entry, trusted in checked(board, watch, entries, history):
        if trusted:
            kept.append(entry)
            continue
        if entry.id not in _UNAPPROVED_SAID:
            _UNAPPROVED_SAID.add(entry.id)
            log.error("production_unapproved", model_name=watch.model_name, version=entry.version,
                      entry_id=entry.id, policy=watch.production_policy)
        if entry.status == "done":
            kept.append(replace(entry, by=EXTERNAL, action="observed"))
    return kept


def untrusted_moves(board: Board, entries: Sequence[AuditEntry], audit_experiment: str) -> set[str]:
    """Ids among ``entries`` (any models) of production moves of approval watches that vetting does not
    trust (for outgoing events: such a move is no ``alias.moved``)."""
    found: set[str] = set()
    for watch in board.approval_watches():
        mine = audit.order([e for e in entries if e.model == watch.model_name and e.alias == watch.production_alias])
        if mine:
            def history(w: WatchConfig = watch) -> list[AuditEntry]:
                return audit.entries(board.client, audit_experiment, w.model_name, w.production_alias)

            found |= {e.id for e, ok in checked(board, watch, mine, history) if not ok}
    return found


def break_glass(client: MlflowClient, service: ApprovalService, watch: WatchConfig, caller: Caller,
                to: str | None, reason: str, audit_experiment: str) -> AuditEntry:
    """A named approver's rollback, at once: to ``to`` or the previous production version, which must
    have held production before. Raises ``ApprovalError`` or ``PromotionError``."""
    history = promotion.production_history(client, watch, audit_experiment)
    current = history[-1].version if history else None
    target = to or next((e.version for e in reversed(history) if e.version and e.version != current), None)
    if target is None or target not in {e.version for e in history}:
        raise service.refuse(409, f"v{target or '-'} never held '{watch.production_alias}' of {watch.model_name}: "
                             "break-glass rolls back only to a former production version", action="rollback",
                             by=caller.username, model=watch.model_name, version=target)
    if not reason.strip():
        raise service.refuse(400, "a break-glass rollback needs a reason", action="rollback", by=caller.username,
                             model=watch.model_name, version=target)
    rec = service.break_glass_record(caller, watch.model_name, target, reason)
    entry = promotion.rollback(client, watch, target, reason, caller.username,
                               audit_experiment=audit_experiment,
                               approval=approval_json(f"break_glass:{rec.request_id}", caller.username, None))
    made = replace(rec, kind="outcome", by="watcher", at=service.board.clock(), comment="", alias="",
                   outcome="applied", entry_id=entry.id)  # the record now backs this move only
    store.append_record(client, watch.model_name, target, made.key, made.signed(service.board.signer))
    log.error("production_rolled_back_break_glass", model_name=watch.model_name, version=target,
              previous_version=entry.previous, by=caller.username, reason=reason, entry_id=entry.id)
    return entry


def default_board(client: MlflowClient, watches: Sequence[WatchConfig]) -> Board:
    """A board over a fixed watch list (``once``, tests), signing with the process's key."""
    from watcher.approvals.signing import Signer

    fixed = list(watches)
    return Board(client, lambda: fixed, Signer.from_env(), time.time)


def board_of(session: Session, client: MlflowClient, config: WatcherConfig) -> Board:
    """The session's approvals board (the daemon's, shared with its API), made on first use."""
    if session.approvals is None:
        session.approvals = default_board(client, config.watches)
    return session.approvals
