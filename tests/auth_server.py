"""An ``mlflow server --app-name basic-auth`` for the tests where identity or permissions matter.

>>> server = start_auth_server(tmp_path, default_permission="MANAGE")
>>> server.create_user("alice", "alice-password-1")        # passwords: at least 12 characters
>>> server.grant("watcher", "experiment", experiment_id, "DENY")
>>> server.revoke("watcher", "experiment", experiment_id)
>>> server.client("alice", "alice-password-1")             # an MlflowClient logged in as alice
>>> stop(server.proc)

``default_permission`` is the permission every non-admin user has where nothing more specific is
granted (MLflow's own default is READ: enough to read, not to register). The admin is ``admin`` with
:attr:`AuthServer.admin_password` (``MLFLOW_AUTH_ADMIN_PASSWORD``). The server runs with one worker and
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` (light under load). Logins are cached by nobody here
unless a test asks (``auth_cache_ttl_seconds``, 0 by default), so a revoked or changed login counts at once.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from mlflow import MlflowClient

from watcher.testing import start_mlflow_server, stop

__all__ = ["AuthServer", "start_auth_server", "stop"]


@dataclass
class AuthServer:
    proc: Any
    uri: str
    admin_password: str
    workdir: Path

    @property
    def admin(self) -> tuple[str, str]:
        return ("admin", self.admin_password)

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.uri}{path}", json=payload, auth=self.admin, timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"POST {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else {}

    def create_user(self, username: str, password: str) -> None:
        """A non-admin user (``password``: at least 12 characters)."""
        self._post("/api/2.0/mlflow/users/create", {"username": username, "password": password})

    def grant(self, username: str, resource_type: str, resource_id: str, permission: str) -> None:
        """``permission`` on one resource (``experiment`` + id, ``registered_model`` + name);
        ``DENY`` denies it."""
        self._post("/api/3.0/mlflow/users/permissions/grant", {
            "username": username, "resource_type": resource_type, "resource_id": resource_id,
            "permission": permission})

    def revoke(self, username: str, resource_type: str, resource_id: str) -> None:
        """Lift what :meth:`grant` set (back to ``default_permission``)."""
        self._post("/api/3.0/mlflow/users/permissions/revoke", {
            "username": username, "resource_type": resource_type, "resource_id": resource_id})

    def client(self, username: str, password: str) -> MlflowClient:
        """An MlflowClient logged in as ``username`` (sets ``MLFLOW_TRACKING_USERNAME/PASSWORD`` in this
        process: MLflow reads them per request; restore them with monkeypatch in the test)."""
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        return MlflowClient(self.uri)


def start_auth_server(workdir: Path, *, default_permission: str = "READ", backend_uri: str | None = None,
                      env: dict[str, str] | None = None, app_name: str = "basic-auth",
                      timeout_s: float = 240, auth_cache_ttl_seconds: int = 0) -> AuthServer:
    """Start the server in ``workdir`` (its auth database is ``workdir/basic_auth.db``).

    ``auth_cache_ttl_seconds`` > 0 lets each worker remember a good login that long (MLflow's
    ``auth_cache_ttl_seconds``): a password check (scrypt) costs 0.1-0.3 s of CPU per request, so a test
    that makes hundreds of requests and never changes a login runs several times faster. A wrong
    password is never cached."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = "admin-" + uuid.uuid4().hex
    ini = workdir / "basic_auth.ini"
    ini.write_text("[mlflow]\n"
                   f"default_permission = {default_permission}\n"
                   f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
                   "admin_username = admin\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                   "grant_default_workspace_access = false\n"
                   f"auth_cache_ttl_seconds = {auth_cache_ttl_seconds}\n")
    proc, uri = start_mlflow_server(
        backend_uri or f"sqlite:///{workdir / 'mlflow.db'}", workdir, timeout_s=timeout_s, app_name=app_name,
        env={"MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
             "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
             **(env or {})})
    return AuthServer(proc, uri, password, workdir)
