"""Approvals in the tick (issue 27): apply approved requests, and vet what backs a production move.

:func:`apply_approved` runs on the replica holding the model's lock: each approved request not yet
applied moves production through the usual ``promote`` (gates re-checked), its audit entry naming the
request, requester, approvers and comments; the daemon then appends the signed ``applied`` outcome.
A crash between the move and the outcome is repaired: an audit entry already naming the request is
taken as the move (never applied twice). A move that cannot be made is ``failed`` with the reason.

:func:`vet` is the policy's guard: on a watch with ``approval``, a ``promote``/``rollback`` audit entry
(an intent or a recorded move) counts as the watcher's own only when it names a signed approved
request or break-glass record for that very version; any other is taken as an external move (so
``revert`` undoes it and ``production_unapproved`` is logged). Entries older than the model's signed
approval baseline are left as they are.

:func:`break_glass` is a named approver's immediate rollback, under a signed break-glass record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from watcher.approvals.board import Board
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
from watcher.store import audit
from watcher.store.audit import AuditEntry

log = get_logger("watcher.approvals")
OWN_ACTIONS = ("promote", "rollback")
_UNAPPROVED_SAID: set[str] = set()


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


def apply_approved(client: MlflowClient, board: Board, watch: WatchConfig, audit_experiment: str) -> list[str]:
    """Apply every approved request of ``watch``'s model not applied yet; returns the versions moved."""
    moved = []
    board.baseline_ms(watch.model_name)  # approvals take effect here: later moves are vetted
    for view in board.model_views(watch.model_name):
        if not view.awaiting_move:
            continue
        ref = f"request:{view.id}"
        done = next((e for e in audit.recent(client, audit_experiment, watch.model_name, watch.production_alias, 20)
                     if e.approval_ref == ref), None)
        if done is not None:  # a crash after the move: the move stands, only the outcome was missing
            _outcome(board, view, "applied", entry_id=done.id)
            continue
        try:
            entry = promotion.promote(client, watch, view.model_version, view.request.comment, view.request.by,
                                      audit_experiment=audit_experiment,
                                      approval=approval_json(ref, view.request.by, view))
        except (promotion.PromotionError, MlflowException) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            _outcome(board, view, "failed", reason)
            log.error("approval_apply_failed", model_name=view.model_name, version=view.model_version, request_id=view.id,
                      reason=reason)
            continue
        _outcome(board, view, "applied", entry_id=entry.id)
        log.info("approval_applied", model_name=view.model_name, version=view.model_version, request_id=view.id,
                 requested_by=view.request.by, approved_by=[v.user for v in view.approvals], entry_id=entry.id)
        moved.append(view.model_version)
    return moved


def vet(board: Board, watch: WatchConfig, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
    """``entries`` (oldest first) as the policy may trust them: an unbacked own-looking move becomes an
    external one (a recorded move) or is dropped (an intent)."""
    if not any(e.action in OWN_ACTIONS for e in entries):
        return list(entries)
    backing = board.backing(watch.model_name)
    kept = []
    for entry in entries:
        ref = entry.approval_ref
        trusted = (entry.action not in OWN_ACTIONS or entry.start_ms <= backing.baseline_ms
                   or (ref is not None and backing.refs.get(ref) == entry.version))
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
