"""A request's state, derived from all its records (pure: no I/O, so every case is a unit test).

States: ``pending``, ``approved``, ``rejected``, ``expired``, ``superseded``, ``withdrawn``,
``failed``. The earliest ending wins: the ``required``-th approval (``approved``), the first
rejection, the withdrawal, a newer request of the same model (``superseded``), or the expiry time;
the daemon's ``outcome`` record then says whether an approved request was ``applied`` (it stays
``approved``, with the audit entry of the move) or ``failed``. Votes after the end do not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.approvals.records import ApprovalRecord
from watcher.store.codec import now_iso

STATES = ("pending", "approved", "rejected", "expired", "superseded", "withdrawn", "failed")


@dataclass(frozen=True)
class Vote:
    """One counted approval."""

    user: str
    comment: str
    at: float

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "comment": self.comment, "at": now_iso(int(self.at * 1000))}


@dataclass(frozen=True)
class RequestView:
    """A request as its records make it now."""

    request: ApprovalRecord
    state: str
    ended_at: float | None = None
    approvals: tuple[Vote, ...] = ()
    rejected_by: str | None = None
    rejection: str = ""
    outcome: ApprovalRecord | None = None
    """The daemon's ``outcome`` record, when written (``applied`` names the audit entry)."""
    superseded_by: str | None = None

    @property
    def id(self) -> str:
        return self.request.request_id

    @property
    def model_name(self) -> str:
        return self.request.model

    @property
    def model_version(self) -> str:
        return self.request.model_version

    @property
    def awaiting_move(self) -> bool:
        """Approved and not applied (nor failed) yet: the daemon's to move."""
        return self.state == "approved" and self.outcome is None

    def as_json(self) -> dict[str, Any]:
        """One row of ``approvals --json`` and ``GET /api/v1/approvals``."""
        req = self.request
        applied = self.outcome is not None and self.outcome.outcome == "applied"
        return {
            "id": req.request_id, "model": req.model, "version": req.model_version, "alias": req.alias,
            "state": self.state, "requested_by": req.by, "approved_by": [v.user for v in self.approvals],
            "approvals": [v.as_json() for v in self.approvals], "rejected_by": self.rejected_by,
            "rejection": self.rejection or None, "required": req.required, "reason": req.comment,
            "requested_at": now_iso(int(req.at * 1000)), "expires_at": now_iso(int(req.expires_at * 1000)),
            "ended_at": None if self.ended_at is None else now_iso(int(self.ended_at * 1000)),
            "audit_entry": self.outcome.entry_id if applied and self.outcome else None,
            "failure": self.outcome.comment if self.outcome and self.outcome.outcome == "failed" else None,
            "superseded_by": self.superseded_by,
        }


@dataclass
class _Ends:
    """The candidate endings of one request, each (time, state, detail)."""

    found: list[tuple[float, str, str]] = field(default_factory=list)

    def add(self, at: float | None, state: str, detail: str = "") -> None:
        if at is not None:
            self.found.append((at, state, detail))

    def first(self) -> tuple[float, str, str] | None:
        return min(self.found, key=lambda e: (e[0], STATES.index(e[1]))) if self.found else None


def _tally(request: ApprovalRecord, records: Sequence[ApprovalRecord]) -> tuple[_Ends, list[Vote]]:
    """The endings the request's own records make, and its approvals in order."""
    ends = _Ends()
    approvals: list[Vote] = []
    for rec in records:
        if rec.kind == "approve" and rec.by != request.by:
            approvals.append(Vote(rec.by, rec.comment, rec.at))
            if len(approvals) == request.required:
                ends.add(rec.at, "approved")
        elif rec.kind == "reject":
            ends.add(rec.at, "rejected", rec.by)
        elif rec.kind == "withdraw" and rec.by == request.by:
            ends.add(rec.at, "withdrawn")
    return ends, approvals


def derive(request: ApprovalRecord, records: Sequence[ApprovalRecord], newer: ApprovalRecord | None,
           now: float) -> RequestView:
    """The state of ``request`` at ``now`` from its own ``records`` (oldest first) and the next
    request of the same model (``newer``, or None)."""
    ends, approvals = _tally(request, records)
    outcome = next((r for r in records if r.kind == "outcome"), None)
    _outer_ends(ends, request, outcome, newer, now)
    end = ends.first()
    if end is None:
        return RequestView(request, "pending", approvals=tuple(approvals))
    at, state, detail = end
    final = outcome if outcome is not None and outcome.outcome in ("applied", "failed") else None
    if state == "approved" and final is not None and final.outcome == "failed":
        state = "failed"
    return RequestView(request, state, at, tuple(v for v in approvals if v.at <= at),
                       detail if state == "rejected" else None, _rejection(records, detail), final,
                       detail if state == "superseded" else None)


def _rejection(records: Sequence[ApprovalRecord], by: str) -> str:
    """The comment of ``by``'s rejection ('' without one)."""
    return next((r.comment for r in records if r.kind == "reject" and r.by == by), "")


def _outer_ends(ends: _Ends, request: ApprovalRecord, outcome: ApprovalRecord | None, newer: ApprovalRecord | None,
                now: float) -> None:
    """The endings from outside the votes: a newer request, the daemon's outcome, the expiry time."""
    if newer is not None:
        ends.add(newer.at, "superseded", newer.request_id)
    if outcome is not None and outcome.outcome in ("expired", "superseded"):
        ends.add(outcome.at, outcome.outcome)
    if now >= request.expires_at:
        ends.add(request.expires_at, "expired")


def request_views(records: Iterable[ApprovalRecord], now: float) -> list[RequestView]:
    """Every request of one model's records, oldest first, with its state at ``now``."""
    by_request: dict[str, list[ApprovalRecord]] = defaultdict(list)
    requests: list[ApprovalRecord] = []
    for rec in records:
        if rec.kind == "request":
            requests.append(rec)
        else:
            by_request[rec.request_id].append(rec)
    requests.sort(key=lambda r: (r.at, r.request_id))
    shown = []
    for i, req in enumerate(requests):
        own = [r for r in by_request.get(req.request_id, []) if r.model_version == req.model_version]
        newer = requests[i + 1] if i + 1 < len(requests) else None
        shown.append(derive(req, own, newer, now))
    return shown


def newest_for(found: Sequence[RequestView], version: str) -> RequestView | None:
    """The newest request for ``version`` (None: it never had one)."""
    mine = [v for v in found if v.model_version == version]
    return mine[-1] if mine else None
