"""Approvals against a real ``mlflow server --app-name basic-auth`` (users alice, bob, carol, dave):
the two-person rule, separation of duties, refusals, rejection, withdrawal, supersede, expiry, a forged
record, a hand move reverted, a failed apply, break-glass, the HTTP API's codes and the CLI end to end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.approvals_world import KEY, PASSWORDS, World, basic
from tests.auth_server import AuthServer, start_auth_server, stop
from tests.daemon_proc import Daemon, wait_status
from watcher.approvals.identity import Unverified
from watcher.approvals.service import ApprovalError
from watcher.engine import approved
from watcher.store import keys
from watcher.testing import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    # logins cached by the server (a scrypt check costs 0.1-0.3 s a request; no test here changes a login):
    # a wrong password is never cached, so its refusal still comes from the check
    srv = start_auth_server(tmp_path_factory.mktemp("auth"), default_permission="READ", auth_cache_ttl_seconds=3600)
    for user, password in PASSWORDS.items():
        srv.create_user(user, password)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    yield srv
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    stop(srv.proc)


def _world(server: AuthServer, policy: str = "revert") -> World:
    return World(server.uri, server.client(*server.admin), policy=policy)  # the daemon's own login


def test_two_person_rule_with_refusals(server):
    w = _world(server)
    req = w.service.request(w.who("carol"), w.model, "2", "better recall")
    assert req.state == "pending"
    w.tick()
    assert w.production() == "1"  # a request never moves production
    with pytest.raises(Unverified):
        w.who("bob", "wrong-password-99")
    refusals = {"carol": 403, "dave": 403}
    for user, status in refusals.items():
        with pytest.raises(ApprovalError) as err:
            w.service.act(w.who(user), req.id, "approve")
        assert err.value.status == status
    with pytest.raises(ApprovalError, match="already has a pending"):
        w.service.request(w.who("carol"), w.model, "2", "again")
    w.service.act(w.who("bob"), req.id, "approve", "looks fine")
    with pytest.raises(ApprovalError) as second:
        w.service.act(w.who("bob"), req.id, "approve")
    assert second.value.status == 409
    w.service.act(w.who("alice"), req.id, "approve", "ok by me")
    w.tick()
    assert w.production() == "2"
    last = w.history()[-1]
    assert last["requested_by"] == "carol" and sorted(last["approved_by"]) == ["alice", "bob"]
    assert {a["user"]: a["comment"] for a in last["approvals"]} == {"bob": "looks fine", "alice": "ok by me"}
    row = next(v for v in w.service.requests_of(w.model) if v.id == req.id).as_json()
    assert row["state"] == "approved" and row["audit_entry"] == last["id"]
    # alice wrote v3's run: she may not approve it
    req3 = w.service.request(w.who("bob"), w.model, "3", "v3")
    with pytest.raises(ApprovalError, match="wrote the run"):
        w.service.act(w.who("alice"), req3.id, "approve")


def test_reject_withdraw_supersede_expire_forged_and_failed(server):
    w = _world(server)
    r2 = w.service.request(w.who("carol"), w.model, "2", "try")
    w.service.act(w.who("bob"), r2.id, "reject", "not yet")
    with pytest.raises(ApprovalError, match="rejected"):
        w.service.act(w.who("alice"), r2.id, "approve")
    r2b = w.service.request(w.who("carol"), w.model, "2", "try again")
    with pytest.raises(ApprovalError) as not_theirs:
        w.service.act(w.who("bob"), r2b.id, "withdraw")
    assert not_theirs.value.status == 403
    assert w.service.act(w.who("carol"), r2b.id, "withdraw").state == "withdrawn"
    r2c = w.service.request(w.who("carol"), w.model, "2", "third")
    r3 = w.service.request(w.who("carol"), w.model, "3", "other version")
    states = {v.id: v.state for v in w.service.requests_of(w.model)}
    assert states[r2c.id] == "superseded" and states[r3.id] == "pending"
    # a forged approval record: written by hand with edit rights, no key
    key = f"{keys.APPROVAL_PREFIX}{r3.id}.vote.0123456789abcdef"
    w.admin.set_model_version_tag(w.model, "3", key, '{"kind": "approve", "by": "alice", "sig": "00"}')
    assert [v.approvals for v in w.service.requests_of(w.model) if v.id == r3.id] == [()]
    w.clock.now += 3601
    assert {v.id: v.state for v in w.service.requests_of(w.model)}[r3.id] == "expired"
    w.clock.now += 1
    # failed: approved, but the version is deleted before the daemon moves it
    r2d = w.service.request(w.who("carol"), w.model, "2", "last try")
    w.service.act(w.who("alice"), r2d.id, "approve")
    w.service.act(w.who("bob"), r2d.id, "approve")
    w.admin.set_model_version_tag(w.model, "2", keys.DECISION, "rejected")  # a gate now refuses it
    w.tick()
    assert w.production() == "1"
    assert {v.id: v.state for v in w.service.requests_of(w.model)}[r2d.id] == "failed"


def test_hand_move_reverted_and_break_glass(server):
    w = _world(server)
    w.admin.set_registered_model_alias(w.model, "production", "3")  # around the approvals
    w.tick()
    assert w.production() == "1"
    r = w.service.request(w.who("carol"), w.model, "2", "go")
    w.service.act(w.who("alice"), r.id, "approve")
    w.service.act(w.who("bob"), r.id, "approve")
    w.tick()
    assert w.production() == "2"
    entry = approved.break_glass(w.admin, w.service, w.watch, w.who("alice"), None, "v2 is broken",
                                 w.config.audit_experiment)
    assert entry.version == "1" and w.production() == "1"
    w.tick()
    assert w.production() == "1"  # the break-glass record backs the move: not reverted
    with pytest.raises(ApprovalError) as err:
        approved.break_glass(w.admin, w.service, w.watch, w.who("dave"), "2", "me too", w.config.audit_experiment)
    assert err.value.status == 403


def test_http_api_codes_and_metrics(server):
    from prometheus_client import REGISTRY

    def metric(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {o: metric("registry_watcher_approval_requests_total", outcome=o) for o in ("requested", "refused", "approved")}
    w = _world(server)
    http = w.serve()
    api = _Api(f"http://127.0.0.1:{http.port}")
    try:
        assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"}).status_code == 401
        assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"},
                        headers=basic("carol", "nope-nope-nope")).status_code == 401
        assert api.post("/api/v1/approvals", data=b"{nope", headers=basic("carol")).status_code == 400
        assert api.post("/api/v1/approvals", json={"model": "nope", "version": "2"}, headers=basic("carol")).status_code == 404
        assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2", "force": True},
                        headers=basic("carol")).status_code == 403
        made = api.post("/api/v1/approvals", json={"model": w.model, "version": "2", "reason": "r"}, headers=basic("carol"))
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        assert metric("registry_watcher_approvals_pending", model=w.model) == 1
        assert metric("registry_watcher_approval_requests_total", outcome="requested") == before["requested"] + 1
        assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"}, headers=basic("carol")).status_code == 409
        assert api.post(f"/api/v1/approvals/{rid}/approve", headers=basic("dave")).status_code == 403
        assert api.post("/api/v1/approvals/nope/approve", headers=basic("bob")).status_code == 404
        assert api.post(f"/api/v1/approvals/{rid}/approve", headers=basic("bob")).status_code == 200
        assert api.post(f"/api/v1/approvals/{rid}/approve", headers=basic("bob")).status_code == 409
        rows = api.get(f"/api/v1/approvals?model={w.model}").json()
        assert rows[0]["approved_by"] == ["bob"] and rows[0]["state"] == "pending"
        assert api.get("/api/v1/approvals?state=bogus").status_code == 400
        assert w.board.pending_by_model()[w.model] == 1
        # every refusal above counted (401 x2, 404, 403 force, 409 second request, 403 dave, 404, 409 second vote)
        assert metric("registry_watcher_approval_requests_total", outcome="refused") >= before["refused"] + 8
        assert api.post(f"/api/v1/approvals/{rid}/approve", headers=basic("alice")).status_code == 200
        w.tick()
        assert w.production() == "2"
        assert metric("registry_watcher_approvals_pending", model=w.model) == 0
        assert metric("registry_watcher_approval_requests_total", outcome="approved") == before["approved"] + 1
    finally:
        http.stop()


class _Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=60)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.base + path, timeout=60, **kwargs)  # type: ignore[arg-type]


def test_cli_through_the_daemon_api(server, tmp_path: Path, monkeypatch, capsys):
    """End to end: each person's CLI -> the HTTP API of a real ``registry-watcher run`` -> its tick moves
    production. The daemon is the subprocess (with its own login); the CLI runs in this process."""
    from watcher.cli import main

    w = _world(server)
    port = free_port()
    path = tmp_path / "w.yaml"
    path.write_text(f"tracking_uri: {server.uri}\naudit_experiment: {w.config.audit_experiment}\n"
                    f"poll_interval_seconds: 30\nhttp: {{host: 127.0.0.1, port: {port}}}\nwatches:\n"
                    f"  - experiment: e-{w.model}\n    model_name: {w.model}\n    production_policy: revert\n"
                    "    approval: {required: 2, approvers: [alice, bob, carol], expire_after_hours: 1}\n")
    daemon = Daemon(path, env={"REGISTRY_WATCHER_SIGNING_KEY": KEY, "MLFLOW_TRACKING_USERNAME": "admin",
                               "MLFLOW_TRACKING_PASSWORD": server.admin_password})
    monkeypatch.delenv("REGISTRY_WATCHER_API_URL", raising=False)  # found from the config's http block

    def as_user(user: str, *argv: str) -> tuple[int, str]:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)  # MLflow and the CLI read them per request
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        try:
            code = main([*argv, "--config", str(path)])
        finally:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.admin_password)
        return code, capsys.readouterr().err

    try:
        wait_status(f"http://127.0.0.1:{port}/readyz", 200, timeout=180)
        assert as_user("carol", "promote", "--model", w.model, "--version", "2", "--reason", "cli")[0] == 0
        code, err = as_user("carol", "promote", "--model", w.model, "--version", "2", "--force", "--reason", "x")
        assert code == 1 and err.startswith("error:")
        code, err = as_user("dave", "approve", "--model", w.model, "--version", "2")
        assert code == 1 and "not a named approver" in err, err
        assert as_user("bob", "approve", "--model", w.model, "--version", "2", "--comment", "fine")[0] == 0
        assert w.production() == "1"
        assert as_user("alice", "approve", "--model", w.model, "--version", "2")[0] == 0
        # the daemon ticks at once on a completed request; applied = moved, audited and its outcome signed
        daemon.wait_for("approval_applied", 120, where=lambda e: e.get("model_name") == w.model)
        assert w.production() == "2"
        capsys.readouterr()
        assert main(["history", "--model", w.model, "--json", "--config", str(path)]) == 0
        out = capsys.readouterr().out
        assert '"requested_by": "carol"' in out and '"alice"' in out and '"bob"' in out
        assert main(["approvals", "--model", w.model, "--json", "--config", str(path)]) == 0
        assert '"state": "approved"' in capsys.readouterr().out
        assert daemon.named("approval_granted") and daemon.named("approval_refused")
    finally:
        daemon.stop()
