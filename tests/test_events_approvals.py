"""``approval.changed`` events from approval records (issue 27's), at the unit level: one event per
state a request reached, stable ids and sequences, read through the feeder's board."""

from __future__ import annotations

from types import SimpleNamespace

from watcher.approvals.records import ApprovalRecord
from watcher.approvals.state import request_views
from watcher.config import WatcherConfig
from watcher.events.approval_facts import approval_events, changes
from watcher.events.facts import Deriver
from watcher.events.model import event_id

T0 = 1_796_292_000.0  # 2026-12-03 10:00 UTC


def _request(rid: str, version: str, at: float, required: int = 1, ttl: float = 3600) -> ApprovalRecord:
    return ApprovalRecord("request", rid, "churn", version, "alice", at, "ship it", "production", required, at + ttl)


def _vote(kind: str, rid: str, version: str, by: str, at: float) -> ApprovalRecord:
    return ApprovalRecord(kind, rid, "churn", version, by, at)


def _outcome(rid: str, version: str, outcome: str, at: float) -> ApprovalRecord:
    return ApprovalRecord("outcome", rid, "churn", version, "watcher", at, outcome=outcome, entry_id="e1")


def _states(events) -> list[tuple[str, str]]:
    return [(e.data["request_id"], e.data["state"]) for e in events]


def test_each_state_a_request_reached_is_one_event_with_its_time_and_people():
    records = [_request("r1", "3", T0), _vote("approve", "r1", "3", "bob", T0 + 60),
               _outcome("r1", "3", "applied", T0 + 61),
               _request("r2", "4", T0 + 100, required=2), _vote("reject", "r2", "4", "carol", T0 + 130)]
    events = approval_events("registry-watcher/t", request_views(records, T0 + 200))
    assert _states(events) == [("r1", "pending"), ("r1", "approved"), ("r2", "pending"), ("r2", "rejected")]
    approved = events[1]
    assert approved.type == "io.registry-watcher.approval.changed" and approved.model == "churn"
    assert approved.id == event_id("approval.changed", "approval:r1:approved")
    assert approved.data == {"model": "churn", "version": "3", "request_id": "r1", "state": "approved",
                             "requested_by": "alice", "approved_by": ["bob"], "at": "2026-12-03T10:01:00.000Z",
                             "alias": "production"}
    assert approved.time.timestamp() == T0 + 60 and approved.subject == "churn/approvals/r1"
    assert events[0].data["approved_by"] == []  # nobody had approved when it was requested
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)  # fact order is sequence order


def test_the_same_records_give_the_same_events_later_and_an_ending_adds_one():
    records = [_request("r1", "3", T0, ttl=600)]
    before = approval_events("s", request_views(records, T0 + 10))
    assert _states(before) == [("r1", "pending")]
    after = approval_events("s", request_views(records, T0 + 700))  # the clock expired it: same ids, one more
    assert _states(after) == [("r1", "pending"), ("r1", "expired")] and after[0] == before[0]
    assert after[1].time.timestamp() == T0 + 600  # at its expiry time, on every replica
    newer = approval_events("s", request_views([*records, _request("r2", "4", T0 + 50)], T0 + 60))
    assert _states(newer) == [("r1", "pending"), ("r1", "superseded"), ("r2", "pending")]


def test_a_failed_move_after_an_approval_says_both():
    records = [_request("r1", "3", T0), _vote("approve", "r1", "3", "bob", T0 + 60),
               _outcome("r1", "3", "failed", T0 + 90)]
    [view] = request_views(records, T0 + 100)
    assert [s for s, _ in changes(view)] == ["pending", "approved", "failed"]
    failed = approval_events("s", [view])[-1]
    assert failed.time.timestamp() == T0 + 90 and failed.data["approved_by"] == ["bob"]


def test_the_feeder_reads_them_through_the_board_read_only():
    records = [_request("r1", "3", T0), _vote("approve", "r1", "3", "bob", T0 + 60)]
    asked: list[tuple[str, bool]] = []

    def model_views(model: str, *, settle: bool = True):
        asked.append((model, settle))
        return request_views(records, T0 + 100)

    board = SimpleNamespace(approval_watches=lambda: [SimpleNamespace(model_name="churn")], model_views=model_views)
    config = WatcherConfig.model_validate({"tracking_uri": "http://mlflow:5000", "watches": [{"experiment": "e", "model_name": "churn"}],
                                           "events": {"outputs": [{"name": "cd", "type": "http",
                                                                   "url": "http://127.0.0.1:9/x"}]}})
    deriver = Deriver(None, config, [], board=lambda: board)  # type: ignore[arg-type]
    assert _states(deriver.approvals()) == [("r1", "pending"), ("r1", "approved")]
    assert asked == [("churn", False)]  # no outcome record written by the events' read
    assert Deriver(None, config, []).approvals() == []  # type: ignore[arg-type]  # no board: no request
