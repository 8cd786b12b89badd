"""Approvals without servers: signing, the state machine, the config checks, identity refusals."""

from __future__ import annotations

import pytest

from watcher.approvals.records import ApprovalRecord, load_records
from watcher.approvals.signing import Signer, SigningKeyMissing
from watcher.approvals.state import derive, request_views
from watcher.approvals.wiring import startup_problem
from watcher.config import WatcherConfig
from watcher.config.approvals import is_loopback
from watcher.store.approval_records import RawRecord

KEY = "k" * 40


def _req(rid: str = "r1", version: str = "1", at: float = 100.0, by: str = "carol", required: int = 2) -> ApprovalRecord:
    return ApprovalRecord("request", rid, "m", version, by, at, "ship it", alias="production", required=required,
                  expires_at=at + 3600)


def _vote(kind: str, by: str, at: float, rid: str = "r1", version: str = "1") -> ApprovalRecord:
    return ApprovalRecord(kind, rid, "m", version, by, at, f"{kind} by {by}")


def test_signature_binds_the_value_to_its_tag_and_key():
    signer = Signer(KEY)
    rec = _req()
    value = rec.signed(signer)
    assert signer.verified(rec.key, value) is not None
    assert signer.verified(rec.key + "x", value) is None  # moved to another tag
    assert Signer("z" * 40).verified(rec.key, value) is None  # another key
    assert signer.verified(rec.key, value.replace("carol", "alice")) is None  # edited
    forged: list[RawRecord] = []
    raws = [RawRecord("m", "1", rec.key, value), RawRecord("m", "2", rec.key, value),  # copied to another version
            RawRecord("m", "1", "watcher.approval.r2.request", '{"kind": "request"}')]
    kept = load_records(raws, signer, forged.append)
    assert kept == [rec] and len(forged) == 2


def test_short_or_missing_key_is_refused():
    with pytest.raises(SigningKeyMissing):
        Signer("short")


@pytest.mark.parametrize(("records", "now", "state"), [
    ([], 200.0, "pending"),
    ([_vote("approve", "alice", 150)], 200.0, "pending"),
    ([_vote("approve", "alice", 150), _vote("approve", "bob", 160)], 200.0, "approved"),
    ([_vote("approve", "alice", 150), _vote("reject", "bob", 160)], 200.0, "rejected"),
    ([_vote("reject", "bob", 160), _vote("approve", "alice", 170), _vote("approve", "dave", 180)], 200.0, "rejected"),
    ([ApprovalRecord("withdraw", "r1", "m", "1", "carol", 150)], 200.0, "withdrawn"),
    ([ApprovalRecord("withdraw", "r1", "m", "1", "alice", 150)], 200.0, "pending"),  # not the requester's: ignored
    ([_vote("approve", "carol", 150), _vote("approve", "bob", 160)], 200.0, "pending"),  # the requester never counts
    ([], 100.0 + 3600, "expired"),
    ([_vote("approve", "alice", 150), _vote("approve", "bob", 100 + 3601)], 100 + 4000, "expired"),
    ([_vote("approve", "alice", 150), _vote("approve", "bob", 160),
      ApprovalRecord("outcome", "r1", "m", "1", "watcher", 170, "gone", outcome="failed")], 200.0, "failed"),
])
def test_state_machine(records, now, state):
    assert derive(_req(), records, None, now).state == state


def test_a_newer_request_supersedes_a_pending_one_but_not_an_approved_one():
    old, new = _req("r1", "1", 100), _req("r2", "2", 300)
    found = request_views([old, new], 400.0)
    assert [v.state for v in found] == ["superseded", "pending"] and found[0].superseded_by == "r2"
    approved = request_views([old, _vote("approve", "alice", 150), _vote("approve", "bob", 160), new], 400.0)
    assert approved[0].state == "approved" and approved[0].awaiting_move
    row = approved[0].as_json()
    assert row["approved_by"] == ["alice", "bob"] and row["requested_by"] == "carol" and row["required"] == 2


def _config(**http: object) -> WatcherConfig:
    return WatcherConfig.model_validate({
        "tracking_uri": "http://127.0.0.1:5000",
        "watches": [{"experiment": "e", "model_name": "m",
                     "approval": {"required": 2, "approvers": ["alice", "bob", "carol"]}}],
        "http": http or {"host": "127.0.0.1"}})


def test_config_checks(monkeypatch):
    with pytest.raises(ValueError, match="no http block"):
        WatcherConfig.model_validate({"watches": [{"experiment": "e", "model_name": "m",
                                                   "approval": {"required": 1, "approvers": ["a"]}}]})
    with pytest.raises(ValueError, match="more than"):
        WatcherConfig.model_validate({"http": {}, "watches": [{"experiment": "e", "model_name": "m",
                                                               "approval": {"required": 2, "approvers": ["a"]}}]})
    monkeypatch.delenv("REGISTRY_WATCHER_SIGNING_KEY", raising=False)
    assert "not set" in (startup_problem(_config())[0] or "")
    monkeypatch.setenv("REGISTRY_WATCHER_SIGNING_KEY", "short")
    assert "shorter" in (startup_problem(_config())[0] or "")
    monkeypatch.setenv("REGISTRY_WATCHER_SIGNING_KEY", KEY)
    assert startup_problem(_config()) == (None, False)
    assert "not loopback" in (startup_problem(_config(host="0.0.0.0"))[0] or "")
    assert startup_problem(_config(host="0.0.0.0", allow_insecure=True)) == (None, True)
    assert startup_problem(_config(host="0.0.0.0", tls_certfile="c.pem", tls_keyfile="k.pem")) == (None, False)
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("10.0.0.1")


def test_cli_refuses_to_start_without_the_key(tmp_path, monkeypatch, capsys):
    from watcher.cli import main

    monkeypatch.delenv("REGISTRY_WATCHER_SIGNING_KEY", raising=False)
    path = tmp_path / "w.yaml"
    path.write_text("tracking_uri: sqlite:///" + str(tmp_path / "m.db") + "\nhttp: {host: 127.0.0.1}\n"
                    "watches:\n  - experiment: e\n    model_name: m\n"
                    "    approval: {required: 1, approvers: [alice]}\n")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "REGISTRY_WATCHER_SIGNING_KEY" in capsys.readouterr().err
