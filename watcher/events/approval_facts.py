"""``approval.changed``: one event per state an approval request reached (issue 27's signed records).

A request's states come from its records (``watcher.approvals.state``): ``pending`` when it was
made, then the ending its records (or the clock) give it (``approved``, ``rejected``, ``expired``,
``superseded``, ``withdrawn``), and ``failed`` after an approval when the daemon's move failed. Each
(request, state) is one fact: key ``approval:<request id>:<state>``, time = when the request
reached that state (ms), sequence = that time, then the state's rank, so every replica computes the
same event. The records are read by the after-tick feeder (:class:`watcher.events.facts.Deriver`)
through the approvals :class:`~watcher.approvals.board.Board`, read only (no outcome written).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from watcher.approvals.state import STATES, RequestView
from watcher.config.events import EVENT_TYPE_PREFIX
from watcher.events.model import OutgoingEvent, event_id, sequence_of
from watcher.store.codec import now_iso

SHORT = "approval.changed"


def changes(view: RequestView) -> list[tuple[str, float]]:
    """The states ``view``'s request reached, each with its time (epoch seconds), oldest first."""
    req = view.request
    found = [("pending", req.at)]
    if view.state == "failed" and view.ended_at is not None:
        found.append(("approved", view.ended_at))
        found.append(("failed", view.outcome.at if view.outcome is not None else view.ended_at))
    elif view.state != "pending" and view.ended_at is not None:
        found.append((view.state, view.ended_at))
    return found


def approval_events(source: str, views: Iterable[RequestView]) -> list[OutgoingEvent]:
    """The ``approval.changed`` events of every state change of ``views`` (one model's requests)."""
    events = []
    for view in views:
        req = view.request
        for state, at in changes(view):
            ms = int(at * 1000)
            when = datetime.fromtimestamp(ms / 1000, timezone.utc)
            approved_by = [v.user for v in view.approvals if v.at <= at]
            data: dict[str, object] = {
                "model": req.model, "version": req.model_version, "request_id": req.request_id, "state": state,
                "requested_by": req.by, "approved_by": approved_by, "at": now_iso(ms, timespec="milliseconds"),
                "alias": req.alias or None}
            events.append(OutgoingEvent(
                id=event_id(SHORT, f"approval:{req.request_id}:{state}"), type=EVENT_TYPE_PREFIX + SHORT,
                source=source, subject=f"{req.model}/approvals/{req.request_id}", time=when,
                sequence=sequence_of(ms, STATES.index(state)), model=req.model, data=data))
    return events
