"""What backs a production move on a watch with approvals (issue 27's review): no servers, stub boards."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

from watcher.approvals.board import Backing, Baseline, Board
from watcher.approvals.records import ApprovalRecord
from watcher.approvals.signing import Signer
from watcher.approvals.state import request_views
from watcher.cli import approvals as cli
from watcher.cli.api import ApiResponse
from watcher.engine import approved
from watcher.engine.policy import EXTERNAL, revert_target
from watcher.store.audit import AuditEntry

KEY = "k" * 40
WATCH: Any = SimpleNamespace(model_name="m", production_alias="production", production_policy="revert",
                             approval=object())


def _e(eid: str, version: str | None, action: str, by: str = "watcher", ms: int = 0, status: str = "done",
       ref: str | None = None) -> AuditEntry:
    approval = json.dumps({"version": 1, "ref": ref}) if ref else None
    return AuditEntry(eid, "m", "production", version, None, "", by, action, "", False, status, ms, approval=approval)


class StubBoard:
    def __init__(self, refs: dict[str, tuple[str, str]] | None = None, baseline: Baseline | None = None,
                 records: list[ApprovalRecord] | None = None) -> None:
        self.refs, self._baseline, self._records = refs or {}, baseline, records or []
        self.client, self.written = None, []  # type: ignore[var-annotated]

    def backing(self, model: str) -> Backing:
        return Backing(self.refs, self._baseline)

    def signed_baseline(self, model: str) -> Baseline | None:
        return self._baseline

    def records(self, model: str) -> list[ApprovalRecord]:
        return self._records

    def write_baseline(self, model: str, baseline: Baseline) -> None:
        self.written.append(baseline)

    def approval_watches(self) -> list[Any]:
        return [WATCH]


def _trusted(board: Any, entries: list[AuditEntry], history: list[AuditEntry] | None = None) -> list[str]:
    pairs = approved.checked(board, WATCH, entries, (lambda: history) if history is not None else None)
    return [e.id for e, ok in pairs if ok]


def test_only_observed_removed_and_true_reverts_are_trusted_beside_backed_moves():
    board = StubBoard({"request:r1": ("3", "a2")}, Baseline("a1", "2"))
    entries = [_e("a1", "2", "promote", "alice", 1), _e("a2", "3", "promote", "carol", 2, ref="request:r1"),
               _e("a3", "7", "observed", EXTERNAL, 3), _e("a4", "3", "revert", ms=4),
               _e("f1", "9", "revert", ms=5), _e("f2", "9", "adopted", ms=6), _e("f3", "9", "stage", ms=7),
               _e("f4", "9", "", ms=8), _e("a5", "4", "observed", "watcher", 9)]
    pairs = approved.checked(board, WATCH, entries)
    assert [e.id for e, ok in pairs if ok] == ["a1", "a2", "a3", "a4", "a5"]
    assert next(e for e, _ in pairs if e.id == "a5").by == EXTERNAL  # an 'observed' entry is never a revert target
    kept = approved.vet(board, WATCH, entries)
    assert revert_target(kept) == "3"  # not the forged revert's v9


def test_a_revert_in_a_window_is_judged_on_the_whole_trail():
    board = StubBoard({"request:r1": ("3", "a2")}, Baseline("a1", "2"))
    trail = [_e("a1", "2", "promote", "alice", 1), _e("a2", "3", "promote", "carol", 2, ref="request:r1"),
             _e("a3", "7", "observed", EXTERNAL, 3)]
    window = [_e("a4", "3", "revert", ms=4), _e("f1", "9", "revert", ms=5)]
    assert _trusted(board, window, trail) == ["a4"]


def test_baseline_is_a_run_id_and_backdating_does_not_buy_trust():
    board = StubBoard({}, Baseline("a2", "2"))
    entries = [_e("f0", "9", "promote", "mallory", 0), _e("a1", "1", "promote", "alice", 1),
               _e("a2", "2", "promote", "bob", 2), _e("f1", "9", "promote", "mallory", 3)]
    pairs = approved.checked(board, WATCH, entries)
    assert [e.id for e, ok in pairs if ok] == ["f0", "a1", "a2"]  # before approvals: they stand, as they were
    assert revert_target([e for e, ok in pairs if ok]) == "2"  # but only the own position then is a target
    assert revert_target(approved.vet(board, WATCH, entries)) == "2"
    # without a baseline nothing from before approvals is trusted
    assert _trusted(StubBoard({}, None), entries) == []


def test_no_rebaseline_once_the_model_has_approval_records(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(approved.audit, "entries", lambda *a, **k: [_e("a1", "2", "promote", "alice", 1)])
    with_records = StubBoard(records=[ApprovalRecord("request", "r1", "m", "2", "carol", 1.0)])
    approved.ensure_baseline(None, with_records, WATCH, "audit")  # type: ignore[arg-type]
    assert with_records.written == []
    fresh = StubBoard()
    approved.ensure_baseline(None, fresh, WATCH, "audit")  # type: ignore[arg-type]
    assert fresh.written == [Baseline("a1", "2")]


class RecordsBoard(Board):
    def signed_baseline(self, model: str) -> Baseline | None:
        return Baseline("", None)


def _approved_request(rid: str, version: str) -> list[ApprovalRecord]:
    return [ApprovalRecord("request", rid, "m", version, "carol", 1.0, alias="production", required=1,
                           expires_at=1e12), ApprovalRecord("approve", rid, "m", version, "bob", 2.0)]


def test_old_backing_is_not_replayable():
    board = RecordsBoard(None, lambda: [WATCH], Signer(KEY), lambda: 10.0)  # type: ignore[arg-type]
    records = [*_approved_request("r1", "2"),
               ApprovalRecord("outcome", "r1", "m", "2", "watcher", 3.0, outcome="applied", entry_id="a1"),
               *_approved_request("r2", "3"),  # approved, its move not made yet
               ApprovalRecord("break_glass", "g1", "m", "2", "alice", 5.0),
               ApprovalRecord("outcome", "g1", "m", "2", "watcher", 6.0, outcome="applied", entry_id="a3")]
    assert [v.state for v in request_views(records, 10.0)][0] in ("approved", "superseded")
    backing = board.backing("m", records)
    assert backing.refs["break_glass:g1"] == ("2", "a3")
    assert backing.refs["request:r2"] == ("3", "")
    stub = StubBoard(dict(backing.refs), Baseline("", None))
    entries = [_e("a2", "3", "promote", "carol", 4, ref="request:r2"), _e("f2", "3", "promote", "x", 5, ref="request:r2"),
               _e("a3", "2", "rollback", "alice", 6, ref="break_glass:g1"),
               _e("f3", "2", "rollback", "x", 7, ref="break_glass:g1"), _e("f4", "2", "promote", "x", 8, ref="request:r1")]
    assert _trusted(stub, entries) == ["a2", "a3"]  # an awaiting request backs its first move only


def _made_setup(monkeypatch: pytest.MonkeyPatch, recent: list[AuditEntry], current: str | None) -> None:
    monkeypatch.setattr(approved.audit, "recent", lambda *a, **k: recent)
    monkeypatch.setattr(approved.registry, "get_model", lambda client, name: None)
    monkeypatch.setattr(approved.registry, "aliases_of", lambda model: {"production": current} if current else {})


def test_a_move_counts_as_made_only_when_production_points_at_it(monkeypatch: pytest.MonkeyPatch):
    abandoned = _e("i1", "3", "promote", "carol", 1, "pending", "request:r1")
    _made_setup(monkeypatch, [abandoned, _e("k1", "3", "promote", "x", 2, "killed", "request:r1")], "2")
    assert approved._made(None, WATCH, "audit", "request:r1", "3") == (None, [abandoned])  # type: ignore[arg-type]
    _made_setup(monkeypatch, [abandoned], "3")  # killed after set_alias: the move stands
    assert approved._made(None, WATCH, "audit", "request:r1", "3") == (abandoned, [])  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "outcome"), [(RESOURCE_DOES_NOT_EXIST, "failed"), (TEMPORARILY_UNAVAILABLE, None)])
def test_only_a_refusal_or_a_deleted_version_fails_a_request(monkeypatch: pytest.MonkeyPatch, code: int,
                                                             outcome: str | None):
    view = request_views(_approved_request("r1", "3"), 10.0)[0]
    board = SimpleNamespace(model_views=lambda model: [view])
    said: list[str] = []
    monkeypatch.setattr(approved, "ensure_baseline", lambda *a: None)
    monkeypatch.setattr(approved, "_made", lambda *a: (None, []))
    monkeypatch.setattr(approved, "_outcome", lambda b, v, o, reason="", entry_id="": said.append(o))

    def promote(*a: object, **k: object) -> AuditEntry:
        raise MlflowException("boom", error_code=code)

    monkeypatch.setattr(approved.promotion, "promote", promote)
    if outcome is None:
        with pytest.raises(MlflowException):
            approved.apply_approved(None, board, WATCH, "audit")  # type: ignore[arg-type]
        assert said == []
    else:
        assert approved.apply_approved(None, board, WATCH, "audit") == []  # type: ignore[arg-type]
        assert said == [outcome]


def test_a_forged_production_entry_is_no_alias_moved_event(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(approved.audit, "entries", lambda *a, **k: [_e("a1", "2", "promote", "alice", 1)])
    board = StubBoard({"request:r1": ("3", "a2")}, Baseline("a1", "2"))
    other = AuditEntry("s1", "m", "staging", "9", None, "", "watcher", "stage", "", False, "done", 1)
    moves = [_e("a2", "3", "promote", "carol", 2, ref="request:r1"), _e("f1", "9", "revert", ms=5), other]
    assert approved.untrusted_moves(board, moves, "audit") == {"f1"}  # type: ignore[arg-type]


def test_cli_encodes_model_names_in_query_strings(monkeypatch: pytest.MonkeyPatch):
    paths: list[str] = []

    def fake(config: object, method: str, path: str, *a: object, **k: object) -> ApiResponse:
        paths.append(path)
        return ApiResponse(200, [])

    monkeypatch.setattr(cli, "api_request", fake)
    cli._listing(None, argparse.Namespace(model="churn model", state="pending", json=True))  # type: ignore[arg-type]
    cli._vote(None, argparse.Namespace(model="churn&model", version="1", verb="approve", comment=""))  # type: ignore[arg-type]
    assert paths == ["/api/v1/approvals?model=churn+model&state=pending", "/api/v1/approvals?model=churn%26model"]
