"""Approvals against a real ``mlflow server --app-name basic-auth`` (users alice, bob, carol, dave):
the two-person rule, separation of duties, refusals, rejection, withdrawal, supersede, expiry, a forged
record, a hand move reverted, a failed apply, break-glass, the HTTP API's codes and the CLI end to end."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.auth_server import start_auth_server, stop
from watcher.approvals.board import Board
from watcher.approvals.identity import Caller, Unverified, verify_caller
from watcher.approvals.service import ApprovalError, ApprovalService
from watcher.approvals.signing import Signer
from watcher.config import WatcherConfig
from watcher.engine import approved, reconcile_once
from watcher.engine.session import Session
from watcher.service.approvals_api import ApprovalsApi
from watcher.store import audit, keys
from watcher.store.audit import AliasMove

pytestmark = pytest.mark.integration
KEY = "s" * 48
PASSWORDS = {u: f"{u}-password-123" for u in ("alice", "bob", "carol", "dave")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = start_auth_server(tmp_path_factory.mktemp("auth"), default_permission="READ")
    for user, password in PASSWORDS.items():
        srv.create_user(user, password)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    yield srv
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    stop(srv.proc)


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.001  # every record of a test at its own time, as on a real clock
        return self.now


def _basic(user: str, password: str | None = None) -> dict[str, str]:
    raw = f"{user}:{password or PASSWORDS[user]}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


class World:
    """One model with versions 1 (production), 2 (run by dave) and 3 (run by alice), all registered."""

    def __init__(self, server, policy: str = "revert") -> None:
        self.server = server
        self.admin = server.client(*server.admin)  # the daemon's own login
        self.model = f"m_{uuid.uuid4().hex[:8]}"
        self.config = WatcherConfig.model_validate({
            "tracking_uri": server.uri, "http": {"host": "127.0.0.1", "port": 0},
            "audit_experiment": f"audit-{self.model}",
            "watches": [{"experiment": f"e-{self.model}", "model_name": self.model, "production_policy": policy,
                         "approval": {"required": 2, "approvers": ["alice", "bob", "carol"],
                                      "expire_after_hours": 1}}]})
        self.watch = self.config.watches[0]
        exp = self.admin.create_experiment(f"runs-{self.model}")
        self.admin.create_registered_model(self.model)
        for author in ("carol", "dave", "alice"):
            run = self.admin.create_run(exp, tags={"mlflow.user": author})
            mv = self.admin.create_model_version(self.model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
            self.admin.set_model_version_tag(self.model, mv.version, keys.DECISION, "registered")
        self.admin.set_registered_model_alias(self.model, "production", "1")
        # production's first move, recorded before approvals took effect (an upgrade): grandfathered
        audit.record(self.admin, self.config.audit_experiment,
                     AliasMove(self.model, "production", "1", None, "carol", "promote", "before approvals"))
        self.clock = Clock()
        self.board = Board(self.admin, lambda: self.config.watches, Signer(KEY), self.clock)
        self.service = ApprovalService(self.board)
        self.session = Session(approvals=self.board)
        self.tick()  # the first tick records production's baseline

    def who(self, user: str, password: str | None = None) -> Caller:
        return verify_caller(_basic(user, password), self.server.uri, None)

    def tick(self) -> None:
        report = reconcile_once(self.admin, self.config, session=self.session, now=self.clock())
        assert not any(w.poll_failed for w in report.watches), report

    def production(self) -> str | None:
        return self.admin.get_registered_model(self.model).aliases.get("production")

    def history(self) -> list[dict]:
        from watcher.engine.promotion import production_history

        return [e.public() for e in production_history(self.admin, self.watch, self.config.audit_experiment)]


def test_two_person_rule_with_refusals(server):
    w = World(server)
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
    w = World(server)
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
    w = World(server)
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


def test_http_api_codes(server):
    w = World(server)
    http = _serve(w)
    api = _Api(f"http://127.0.0.1:{http.port}")
    assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"}).status_code == 401
    assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"},
                    headers=_basic("carol", "nope-nope-nope")).status_code == 401
    assert api.post("/api/v1/approvals", data=b"{nope", headers=_basic("carol")).status_code == 400
    assert api.post("/api/v1/approvals", json={"model": "nope", "version": "2"}, headers=_basic("carol")).status_code == 404
    assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2", "force": True},
                    headers=_basic("carol")).status_code == 403
    made = api.post("/api/v1/approvals", json={"model": w.model, "version": "2", "reason": "r"}, headers=_basic("carol"))
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert api.post("/api/v1/approvals", json={"model": w.model, "version": "2"}, headers=_basic("carol")).status_code == 409
    assert api.post(f"/api/v1/approvals/{rid}/approve", headers=_basic("dave")).status_code == 403
    assert api.post("/api/v1/approvals/nope/approve", headers=_basic("bob")).status_code == 404
    assert api.post(f"/api/v1/approvals/{rid}/approve", headers=_basic("bob")).status_code == 200
    assert api.post(f"/api/v1/approvals/{rid}/approve", headers=_basic("bob")).status_code == 409
    rows = api.get(f"/api/v1/approvals?model={w.model}").json()
    assert rows[0]["approved_by"] == ["bob"] and rows[0]["state"] == "pending"
    assert api.get("/api/v1/approvals?state=bogus").status_code == 400
    assert w.board.pending_by_model()[w.model] == 1
    http.stop()


class _Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=60)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.base + path, timeout=60, **kwargs)  # type: ignore[arg-type]


def _serve(w: World):
    from watcher.service.health import Health
    from watcher.service.http import HttpServer, build_app

    app = build_app(Health.for_config(w.config), w.config.http,
                    extra_routes=ApprovalsApi(w.service, lambda: w.config).approval_routes())
    http = HttpServer(app, w.config.http)
    http.start()
    return http


def test_cli_through_the_daemon_api(server, tmp_path: Path, monkeypatch, capsys):
    from watcher.cli import main
    w = World(server)
    http = _serve(w)
    try:
        monkeypatch.setenv("REGISTRY_WATCHER_API_URL", f"http://127.0.0.1:{http.port}")
        path = tmp_path / "w.yaml"
        path.write_text(f"tracking_uri: {server.uri}\naudit_experiment: {w.config.audit_experiment}\n"
                        "http: {host: 127.0.0.1, port: 0}\nwatches:\n"
                        f"  - experiment: e-{w.model}\n    model_name: {w.model}\n    production_policy: revert\n"
                        "    approval: {required: 2, approvers: [alice, bob, carol], expire_after_hours: 1}\n")

        def as_user(user: str, *argv: str) -> int:
            # its own process, as a person's CLI is: MLflow reads the login from the environment per request,
            # so setting it here would log the in-process daemon in as that person too
            env = {**os.environ, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": PASSWORDS[user]}
            done = subprocess.run([sys.executable, "-m", "watcher", *argv, "--config", str(path)], env=env,
                                  capture_output=True, text=True, timeout=300, check=False)
            print(done.stderr)
            return done.returncode

        assert as_user("carol", "promote", "--model", w.model, "--version", "2", "--reason", "cli") == 0
        assert as_user("carol", "promote", "--model", w.model, "--version", "2", "--force", "--reason", "x") == 1
        assert as_user("dave", "approve", "--model", w.model, "--version", "2") == 1
        assert "error:" in capsys.readouterr().out
        assert as_user("bob", "approve", "--model", w.model, "--version", "2", "--comment", "fine") == 0
        assert as_user("alice", "approve", "--model", w.model, "--version", "2") == 0
        w.tick()  # the daemon's tick
        assert w.production() == "2"
        capsys.readouterr()
        assert main(["history", "--model", w.model, "--json", "--config", str(path)]) == 0
        assert '"requested_by": "carol"' in capsys.readouterr().out
        assert main(["approvals", "--model", w.model, "--json", "--config", str(path)]) == 0
        assert '"state": "approved"' in capsys.readouterr().out
    finally:
        http.stop()

