"""The approvals service: request, approve, reject, withdraw and list, for the HTTP API and the tick.

Every action reads the model's records (expiry is checked then), applies the rules and appends one
signed record. The rules: only a watch with ``approval``; a request is refused (409) for a version the
gates did not register or that is already production, and beside a pending request of the same
version; a request for another version supersedes the pending one; ``force`` is refused. A vote is a
named approver's, once per person, never the requester's nor the run author's (``mlflow.user``), on a
pending request only. Refusals raise :class:`ApprovalError` (HTTP status and reason) and are logged.
"""

from __future__ import annotations

from collections.abc import Callable

from watcher.approvals.board import Board
from watcher.approvals.identity import Caller
from watcher.approvals.records import ApprovalRecord, cap, new_id
from watcher.approvals.state import RequestView, newest_for
from watcher.config import WatchConfig
from watcher.obs import metrics_approvals as metrics
from watcher.obs.logs import get_logger
from watcher.store import approval_records as store
from watcher.store import registry
from watcher.store.codec import now_iso

log = get_logger("watcher.approvals")


class ApprovalError(Exception):
    """A refused action: ``status`` (401, 403, 404, 409, 400) and the reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ApprovalService:
    """Acts on approval records for verified callers; ``kick`` asks the daemon for a tick (an approved request)."""

    def __init__(self, board: Board, kick: Callable[[], None] | None = None) -> None:
        self.board = board
        self.kick = kick

    def refuse(self, status: int, detail: str, *, action: str, by: str | None = None, model: str | None = None,
               version: str | None = None, request_id: str | None = None) -> ApprovalError:
        """Log and count a refusal; returns the error to raise."""
        metrics.count_outcome("refused")
        log.warning("approval_refused", action=action, by=by, reason=detail, status=status, model_name=model,
                    version=version, request_id=request_id)
        return ApprovalError(status, detail)

    def _approval_watch(self, model: str, action: str, by: str | None) -> WatchConfig:
        watch = self.board.watch(model)
        if watch is None:
            raise self.refuse(404, f"no watch with an approval block for model '{model}'", action=action, by=by,
                              model=model)
        return watch

    def request(self, caller: Caller, model: str, version: str, reason: str, *, force: bool = False,
                action: str = "promote") -> RequestView:
        """A pending request for ``version`` (superseding any pending one of another version)."""
        watch = self._approval_watch(model, action, caller.username)
        assert watch.approval is not None

        def no(status: int, detail: str) -> ApprovalError:
            return self.refuse(status, detail, action=action, by=caller.username, model=model, version=version)

        if force:
            raise no(403, "--force is refused on a watch with approval: the gates' refusals stand")
        facts = store.version_facts(self.board.client, model, version)
        if facts is None:
            raise no(404, f"{model} v{version} does not exist")
        decision, why = registry.decision_of(self.board.client, registry.get_version(self.board.client, model, version))
        if decision != "registered":
            what = "was never decided by the gates" if decision is None else f"was {decision} by the gates: {why}"
            raise no(409, f"{model} v{version} {what}")
        current = registry.aliases_of(registry.get_model(self.board.client, model)).get(watch.production_alias)
        if current == version:
            raise no(409, f"{model} v{version} is already '{watch.production_alias}'")
        found = self.board.model_views(model)
        if not found and self.board.signed_baseline(model) is None:  # its first record must follow the baseline
            raise no(409, f"approvals have not taken effect on {model} yet (the daemon's next tick records "
                          "its baseline); retry in a moment")
        newest = newest_for(found, version)
        if newest is not None and (newest.state == "pending" or newest.awaiting_move):
            raise no(409, f"{model} v{version} already has a {newest.state} request ({newest.id})")
        now = self.board.clock()
        rec = ApprovalRecord("request", new_id(), model, version, caller.username, now, cap(reason),
                     alias=watch.production_alias, required=watch.approval.required,
                     expires_at=now + watch.approval.expire_after_seconds)
        store.append_record(self.board.client, model, version, rec.key, rec.signed(self.board.signer))
        metrics.count_outcome("requested")
        store.show_state(self.board.client, model, version, "pending", [])
        log.info("approval_requested", model_name=model, version=version, request_id=rec.request_id,
                 by=caller.username, required=rec.required, expires_at=now_iso(int(rec.expires_at * 1000)))
        views = self.board.model_views(model)  # settles the superseded request(s)
        return next(v for v in views if v.id == rec.request_id)

    def act(self, caller: Caller, request_id: str, action: str, comment: str = "") -> RequestView:
        """``approve``, ``reject`` or ``withdraw`` the request ``request_id``."""
        view = self.board.find(request_id)
        if view is None:
            raise self.refuse(404, f"no approval request '{request_id}'", action=action, by=caller.username,
                              request_id=request_id)
        watch = self._approval_watch(view.model_name, action, caller.username)
        assert watch.approval is not None

        def no(status: int, detail: str) -> ApprovalError:
            return self.refuse(status, detail, action=action, by=caller.username, model=view.model_name,
                               version=view.model_version, request_id=request_id)

        if view.state != "pending":
            raise no(409, f"the request for {view.model_name} v{view.model_version} is {view.state}, not pending")
        user = caller.username
        if action == "withdraw":
            if user != view.request.by:
                raise no(403, f"only the requester ({view.request.by}) may withdraw the request")
        else:
            self._check_voter(watch, view, user, action, comment, no)
        rec = ApprovalRecord(action, request_id, view.model_name, view.model_version, user, self.board.clock(), cap(comment))
        signed = rec.signed(self.board.signer)
        if not store.append_record(self.board.client, view.model_name, view.model_version, rec.key, signed):
            raise no(409, f"{user} already voted on this request")
        after = next(v for v in self.board.model_views(view.model_name) if v.id == request_id)
        self._said(action, after, user, comment)
        return after

    def _check_voter(self, watch: WatchConfig, view: RequestView, user: str, action: str, comment: str,
                     no: Callable[[int, str], ApprovalError]) -> None:
        assert watch.approval is not None
        if user not in watch.approval.approvers:
            raise no(403, f"{user} is not a named approver of {view.model_name}")
        if user == view.request.by:
            raise no(403, f"{user} made the request and may not {action} it (withdraw it instead)")
        if action == "reject" and not comment.strip():
            raise no(400, "a rejection needs a comment saying why")
        if action == "approve":
            facts = store.version_facts(self.board.client, view.model_name, view.model_version)
            author = store.run_author(self.board.client, facts.run_id if facts else None)
            if author is not None and author == user:
                raise no(403, f"{user} wrote the run of v{view.model_version} (its mlflow.user) and may not approve it")
        votes = [r for r in self.board.records(view.model_name)
                 if r.request_id == view.id and r.kind in ("approve", "reject") and r.by == user]
        if votes:
            raise no(409, f"{user} already voted on this request ({votes[0].kind})")

    def _said(self, action: str, view: RequestView, user: str, comment: str) -> None:
        fields = {"model_name": view.model_name, "version": view.model_version, "request_id": view.id}
        approvers = [v.user for v in view.approvals]
        if action == "approve":
            log.info("approval_granted", by=user, approvals=len(approvers), required=view.request.required, **fields)
        elif action == "reject":
            metrics.count_outcome("rejected")
            log.info("approval_rejected", by=user, comment=comment, **fields)
        else:
            metrics.count_outcome("withdrawn")
            log.info("approval_withdrawn", by=user, **fields)
        store.show_state(self.board.client, view.model_name, view.model_version, view.state, approvers)
        if view.awaiting_move and self.kick is not None:
            self.kick()

    def requests_of(self, model: str | None = None, state: str | None = None) -> list[RequestView]:
        """Every request (of ``model``; in ``state``), oldest first. Needs no identity."""
        if model is not None and self.board.watch(model) is None:
            raise ApprovalError(404, f"no watch with an approval block for model '{model}'")
        found = self.board.all_views(model)
        return [v for v in found if state is None or v.state == state]

    def break_glass_record(self, caller: Caller, model: str, version: str, reason: str) -> ApprovalRecord:
        """The signed break-glass record a named approver's immediate rollback is made under."""
        watch = self._approval_watch(model, "rollback", caller.username)
        assert watch.approval is not None
        if caller.username not in watch.approval.approvers:
            raise self.refuse(403, f"{caller.username} is not a named approver", action="rollback",
                              by=caller.username, model=model, version=version)
        rec = ApprovalRecord("break_glass", new_id(), model, version, caller.username, self.board.clock(), cap(reason),
                     alias=watch.production_alias)
        store.append_record(self.board.client, model, version, rec.key, rec.signed(self.board.signer))
        return rec
