"""One model under approvals for the tests of issue 27, driven in process: the board, the service and
the daemon's tick (``reconcile_once``) called directly, the HTTP API served on a free loopback port.

>>> w = World(uri, admin_client)                       # versions 1 (production), 2 (run by dave), 3 (by alice)
>>> req = w.service.request(caller, w.model, "2", "why")
>>> w.tick(); w.production()
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from mlflow import MlflowClient

from watcher.approvals.board import Board
from watcher.approvals.identity import Caller, verify_caller
from watcher.approvals.service import ApprovalService
from watcher.approvals.signing import Signer
from watcher.config import WatcherConfig
from watcher.engine import reconcile_once
from watcher.engine.session import Session
from watcher.service.approvals_api import ApprovalsApi
from watcher.store import audit, keys
from watcher.store.audit import AliasMove

KEY = "s" * 48
"""The daemon's signing key in these tests."""
PASSWORDS = {u: f"{u}-password-123" for u in ("alice", "bob", "carol", "dave")}
APPROVAL = {"required": 2, "approvers": ["alice", "bob", "carol"], "expire_after_hours": 1}


class Clock:
    """Epoch seconds that move on by 1 ms at each reading (every record at its own time, as on a real
    clock); tests move ``now`` on to expire a request."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def basic(user: str, password: str | None = None) -> dict[str, str]:
    """The lower-case headers of a Basic login (``PASSWORDS[user]`` unless given)."""
    raw = f"{user}:{password or PASSWORDS[user]}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


class World:
    """One model with versions 1 (production), 2 (run by dave) and 3 (run by alice), all registered,
    watched with ``required: 2`` of alice, bob, carol; ``admin`` is the daemon's own client."""

    def __init__(self, uri: str, admin: MlflowClient, *, policy: str = "revert",
                 identity: dict[str, Any] | None = None, http: dict[str, Any] | None = None) -> None:
        self.uri, self.admin = uri, admin
        self.model = f"m_{uuid.uuid4().hex[:8]}"
        self.config = WatcherConfig.model_validate({
            "tracking_uri": uri, "http": http or {"host": "127.0.0.1", "port": 0}, "identity": identity or {},
            "audit_experiment": f"audit-{self.model}",
            "watches": [{"experiment": f"e-{self.model}", "model_name": self.model, "production_policy": policy,
                         "approval": APPROVAL}]})
        self.watch = self.config.watches[0]
        exp = admin.create_experiment(f"runs-{self.model}")
        admin.create_registered_model(self.model)
        for author in ("carol", "dave", "alice"):
            run = admin.create_run(exp, tags={"mlflow.user": author})
            mv = admin.create_model_version(self.model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
            admin.set_model_version_tag(self.model, mv.version, keys.DECISION, "registered")
        admin.set_registered_model_alias(self.model, "production", "1")
        # production's first move, recorded before approvals took effect (an upgrade): grandfathered
        audit.record(admin, self.config.audit_experiment,
                     AliasMove(self.model, "production", "1", None, "carol", "promote", "before approvals"))
        self.clock = Clock()
        self.board = Board(admin, lambda: self.config.watches, Signer(KEY), self.clock)
        self.service = ApprovalService(self.board)
        self.session = Session(approvals=self.board)
        self.tick()  # the first tick records production's baseline

    def who(self, user: str, password: str | None = None) -> Caller:
        """``user`` verified by the tracking server from a Basic login (raises ``Unverified``)."""
        return verify_caller(basic(user, password), self.uri, self.config.identity.oidc)

    def tick(self) -> None:
        """One tick of the daemon, in process."""
        report = reconcile_once(self.admin, self.config, session=self.session, now=self.clock())
        assert not any(w.poll_failed for w in report.watches), report

    def production(self) -> str | None:
        return self.admin.get_registered_model(self.model).aliases.get("production")

    def history(self) -> list[dict[str, Any]]:
        from watcher.engine.promotion import production_history

        return [e.public() for e in production_history(self.admin, self.watch, self.config.audit_experiment)]

    def state(self, request_id: str) -> str:
        return next(v.state for v in self.service.requests_of(self.model) if v.id == request_id)

    def serve(self) -> Any:
        """The approvals API of this world on a free loopback port (an ``HttpServer``: ``.port``, ``.stop()``)."""
        from watcher.service.health import Health
        from watcher.service.http import HttpServer, build_app

        assert self.config.http is not None
        app = build_app(Health.for_config(self.config), self.config.http,
                        extra_routes=ApprovalsApi(self.service, lambda: self.config).approval_routes())
        http = HttpServer(app, self.config.http)
        http.start()
        return http
