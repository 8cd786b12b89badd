"""The MLflow server plugin (``plugins/mlflow-run-events``): a signed ``run.finished`` event the
moment a run ends, from a real ``mlflow server --app-name registry-watcher --workers 2``.

The receiver here is a plain loopback HTTP server that records what arrives; the watcher's own
receiver of these events is tested in ``tests/test_run_events.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow import MlflowClient

from watcher.service.webhooks import signature_valid
from watcher.testing import free_port, start_mlflow_server, stop

pytestmark = pytest.mark.integration
SECRET = "run-events-secret-" + uuid.uuid4().hex[:8]


class Recorder:
    """A loopback receiver: every POST's headers and body, in arrival order."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder.arrived:
                    recorder.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    recorder.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/mlflow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        with self.arrived:
            return [json.loads(body) for _, body in self.received]

    def wait_for_run(self, run_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for headers, body in self.received:
                    payload = json.loads(body)
                    if payload["data"]["run_id"] == run_id:
                        return {"headers": headers, "body": body, "payload": payload}
                left = deadline - time.monotonic()
                assert left > 0, f"no event for run {run_id} within {timeout}s; got {self.received}"
                self.arrived.wait(min(left, 0.5))


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory):
    recorder = Recorder()
    workdir = tmp_path_factory.mktemp("mlflow-plugin")
    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir, timeout_s=180,
                                    app_name="registry-watcher", workers=2,
                                    env={"REGISTRY_WATCHER_RUN_EVENTS_URL": recorder.url,
                                         "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET})
    yield uri, recorder, workdir
    stop(proc)
    recorder.server.shutdown()


def _new_run(client: MlflowClient, experiment_id: str) -> str:
    return client.create_run(experiment_id).info.run_id


def test_every_client_path_that_finishes_a_run_sends_one_signed_event(plugin_server):
    uri, recorder, _ = plugin_server
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(f"plugin_{uuid.uuid4().hex[:8]}")
    ended = _new_run(client, experiment_id)
    client.set_terminated(ended, "FINISHED")
    updated = _new_run(client, experiment_id)
    client.update_run(updated, status="FINISHED")
    import mlflow

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=experiment_id) as active:
        mlflow.log_metric("recall", 0.5)
    for run_id in (ended, updated, active.info.run_id):
        event = recorder.wait_for_run(run_id)
        payload, headers = event["payload"], event["headers"]
        assert (payload["entity"], payload["action"]) == ("run", "finished")
        assert payload["data"]["experiment_id"] == experiment_id and payload["data"]["status"] == "FINISHED"
        assert set(payload["data"]) == {"run_id", "experiment_id", "status", "end_time"}
        assert payload["timestamp"].startswith("20")
        assert signature_valid(SECRET, headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], event["body"],
                               headers["x-mlflow-signature"])
    assert isinstance(recorder.wait_for_run(ended)["payload"]["data"]["end_time"], int)


def test_failed_and_killed_runs_send_nothing(plugin_server):
    uri, recorder, _ = plugin_server
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(f"plugin_{uuid.uuid4().hex[:8]}")
    failed, killed = _new_run(client, experiment_id), _new_run(client, experiment_id)
    client.set_terminated(failed, "FAILED")
    client.set_terminated(killed, "KILLED")
    markers = []
    for _ in range(4):  # several finished runs after them, through both workers
        markers.append(_new_run(client, experiment_id))
        client.set_terminated(markers[-1], "FINISHED")
    for marker in markers:
        recorder.wait_for_run(marker)
    announced = {e["data"]["run_id"] for e in recorder.events()}
    assert failed not in announced and killed not in announced


def test_the_hook_sees_the_route_and_a_moved_route_is_loud():
    """If a future MLflow serves runs/update natively in FastAPI, the Flask hook would go quiet:
    this fails first. Run in a child process (importing mlflow.server builds its apps)."""
    code = """
import json
from mlflow.server import app as flask_app
from mlflow.server.fastapi_app import app as fastapi_app
from starlette.routing import Match, Mount
rules = {r.rule: r.endpoint for r in flask_app.url_map.iter_rules()}
paths = ["/api/2.0/mlflow/runs/update", "/ajax-api/2.0/mlflow/runs/update"]
served = {}
for path in paths:
    scope = {"type": "http", "path": path, "root_path": "", "method": "POST", "headers": [], "query_string": b""}
    first = next(r for r in fastapi_app.router.routes if r.matches(scope)[0] == Match.FULL)
    served[path] = type(first).__name__
from registry_watcher_run_events import hook
print(json.dumps({"rules": {p: rules.get(p) for p in paths}, "served": served,
                  "installed": hook.attach(flask_app)}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["rules"] == {"/api/2.0/mlflow/runs/update": "_update_run",
                              "/ajax-api/2.0/mlflow/runs/update": "_update_run"}
    assert found["served"] == {"/api/2.0/mlflow/runs/update": "Mount", "/ajax-api/2.0/mlflow/runs/update": "Mount"}
    assert found["installed"] is True


def test_signing_is_mlflows_own():
    from mlflow.webhooks.delivery import _generate_hmac_signature
    from registry_watcher_run_events.delivery import sign

    body = '{"entity": "run"}'
    assert sign("s3cret", "id-1", "1700000000", body.encode()) == _generate_hmac_signature(
        "s3cret", "id-1", "1700000000", body)


@pytest.mark.timeout(600)
def test_a_receiver_that_is_down_never_fails_the_client_and_leaks_no_secret(tmp_path: Path):
    dead = f"http://user:pw-{uuid.uuid4().hex[:6]}@127.0.0.1:{free_port()}/webhooks/mlflow"
    proc, uri = start_mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, timeout_s=180,
                                    app_name="registry-watcher",
                                    env={"REGISTRY_WATCHER_RUN_EVENTS_URL": dead,
                                         "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET,
                                         "REGISTRY_WATCHER_RUN_EVENTS_TIMEOUT_SECONDS": "0.5"})
    try:
        client = MlflowClient(uri)
        experiment_id = client.create_experiment("down")
        run_id = _new_run(client, experiment_id)
        client.set_terminated(run_id, "FINISHED")  # returns as usual: delivery is off the request path
        assert client.get_run(run_id).info.status == "FINISHED"
        log = tmp_path / "server.log"
        deadline = time.monotonic() + 60
        while "run event to" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        text = log.read_text()
        assert "run event to http://user:***@127.0.0.1" in text and "failed after 4 attempts" in text
        assert SECRET not in text and dead.split("@", maxsplit=1)[0].rsplit(":", maxsplit=1)[-1] not in text
    finally:
        stop(proc)


@pytest.mark.timeout(600)
def test_the_basic_auth_wrapper_authenticates_bootstraps_once_and_announces_only_what_it_let_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``--app-name registry-watcher-basic-auth`` with two workers: MLflow's basic-auth (the admin
    created once, under the plugin's lock, since MLflow bootstraps only for the literal name
    ``basic-auth``), plus the hook; a request basic-auth refuses announces nothing."""
    import requests

    recorder = Recorder()
    password = "admin-" + uuid.uuid4().hex
    proc, uri = start_mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, timeout_s=240,
                                    app_name="registry-watcher-basic-auth", workers=2,
                                    env={"REGISTRY_WATCHER_RUN_EVENTS_URL": recorder.url,
                                         "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET,
                                         "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
                                         "MLFLOW_AUTH_ADMIN_PASSWORD": password})
    try:
        api = f"{uri}/api/2.0/mlflow"
        assert requests.get(f"{api}/experiments/search", params={"max_results": 1}, timeout=30).status_code == 401
        assert requests.get(f"{api}/experiments/search", params={"max_results": 1}, auth=("admin", "wrong"),
                            timeout=30).status_code == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(uri)
        experiment_id = client.create_experiment(f"auth_{uuid.uuid4().hex[:8]}")
        refused = _new_run(client, experiment_id)
        denied = requests.post(f"{api}/runs/update", json={"run_id": refused, "status": "FINISHED"}, timeout=30)
        assert denied.status_code == 401 and client.get_run(refused).info.status == "RUNNING"
        finished = []
        for _ in range(4):  # through both workers: each one serves authenticated requests and hooks them
            finished.append(_new_run(client, experiment_id))
            client.set_terminated(finished[-1], "FINISHED")
        for run_id in finished:
            event = recorder.wait_for_run(run_id)
            headers = event["headers"]
            assert signature_valid(SECRET, headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"],
                                   event["body"], headers["x-mlflow-signature"])
        assert refused not in {e["data"]["run_id"] for e in recorder.events()}
        log = (tmp_path / "server.log").read_text()
        assert log.count("Created admin user") == 1 and "IntegrityError" not in log and password not in log
        assert (tmp_path / "basic_auth.db").is_file()  # MLflow's default auth store, in the server's cwd
    finally:
        stop(proc)
        recorder.server.shutdown()
