"""Run events end to end: a real ``mlflow server --app-name registry-watcher`` tells the daemon the
moment a run ends; the daemon polls only every 60 s, so every staging move here comes from an event.

Also: with the watcher down, logging a run is not held up and the start-up poll picks the run up;
a forged or unsigned run event is refused (401) and changes nothing; FAILED and KILLED runs, and the
watcher's own audit runs, trigger nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import mlflow
import pytest
from daemon_proc import Daemon, post
from helpers import decision, train
from mlflow import MlflowClient

from watcher.service.webhooks import sign
from watcher.store import keys
from watcher.testing import free_port, start_mlflow_server, stop

pytestmark = pytest.mark.integration
SECRET = "run-events-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def evented(tmp_path_factory):
    """The server with the plugin, delivering to a port the daemons of this module listen on."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("mlflow-run-events")
    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir, timeout_s=180,
                                    app_name="registry-watcher", workers=2,
                                    env={"REGISTRY_WATCHER_RUN_EVENTS_URL": f"http://127.0.0.1:{port}/webhooks/mlflow",
                                         "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET,
                                         "REGISTRY_WATCHER_RUN_EVENTS_TIMEOUT_SECONDS": "0.5"})
    yield uri, port, workdir
    stop(proc)


def _config(tmp_path: Path, uri: str, port: int, experiment: str, model: str) -> Path:
    text = (f"tracking_uri: {uri}\npoll_interval_seconds: 60\nlog: {{level: DEBUG}}\n"
            f"http: {{host: 127.0.0.1, port: {port}, webhook_secret: {SECRET}}}\n"
            f"watches:\n  - experiment: {experiment}\n    model_name: {model}\n"
            "    gates: [{metric: recall, min: 0.0}]\n")
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return path


def _names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"evented_{suffix}", f"evented_model_{suffix}"


@pytest.mark.timeout(600)
def test_five_runs_in_a_row_are_staged_from_their_events(evented, tmp_path):
    uri, port, _ = evented
    experiment, model = _names()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)  # exists before the daemon starts: its first full poll covers it
    daemon = Daemon(_config(tmp_path, uri, port, experiment, model))
    try:
        daemon.wait_for("http_listening", 90)
        daemon.wait_for("poll_completed", 90)  # the start-up poll; the next scheduled one is 60 s away
        started = time.monotonic()
        for i in range(5):
            run_id = train(experiment, rows=200, n_estimators=2, seed=i)
            ended = MlflowClient(uri).get_run(run_id).info.end_time / 1000
            moved = daemon.wait_for("staging_alias_moved", 45, where=lambda e, r=run_id: e.get("run_id") == r)
            print(f"run {i + 1}: staged {_epoch(moved['timestamp']) - ended:.2f} s after it ended")
        elapsed = time.monotonic() - started
        ticks = [e for e in daemon.named("tick_requested") if e.get("reason") == "webhook:run.finished"]
        assert len(ticks) >= 5 and all(t["experiments"] == [experiment] for t in ticks)
        if elapsed < 55:  # all within one poll interval: the schedule cannot have staged any of them
            assert len(daemon.named("staging_alias_moved")) == 5
        own = [e for e in daemon.named("run_event_received") if e.get("experiments") == []]
        assert own, "the watcher's own audit runs announce themselves too, and are ignored"
    finally:
        daemon.stop()


@pytest.mark.timeout(600)
def test_with_the_watcher_down_the_start_up_poll_picks_the_run_up(evented, tmp_path):
    uri, port, workdir = evented
    experiment, model = _names()
    mlflow.set_tracking_uri(uri)
    run_id = train(experiment, rows=200, n_estimators=2, seed=3)  # the plugin's delivery fails: nobody listens
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    daemon = Daemon(_config(tmp_path, uri, port, experiment, model))
    try:
        daemon.wait_for("run_registered", 120, where=lambda e: e.get("run_id") == run_id)
        assert decision(MlflowClient(uri), run_id)[keys.DECISION] == "registered"
    finally:
        daemon.stop()
    log = (workdir / "server.log").read_text()
    assert SECRET not in log


@pytest.mark.timeout(600)
def test_forged_unsigned_failed_and_killed_trigger_nothing(evented, tmp_path):
    uri, port, _ = evented
    experiment, model = _names()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(experiment)
    daemon = Daemon(_config(tmp_path, uri, port, experiment, model))
    try:
        daemon.wait_for("poll_completed", 90)
        body = json.dumps({"entity": "run", "action": "finished", "timestamp": "2026-12-02T10:00:00+00:00",
                           "data": {"run_id": "r" * 32, "experiment_id": experiment_id, "status": "FINISHED",
                                    "end_time": 1}}).encode()
        stamp = str(int(time.time()))
        url = f"http://127.0.0.1:{port}/webhooks/mlflow"
        forged = {"X-MLflow-Delivery-Id": "forged-1", "X-MLflow-Timestamp": stamp,
                  "X-MLflow-Signature": sign("not-the-secret", "forged-1", stamp, body)}
        assert post(url, body, forged)[0] == 401
        assert post(url, body, {})[0] == 401  # no signature headers at all
        failed, killed = client.create_run(experiment_id).info.run_id, client.create_run(experiment_id).info.run_id
        client.set_terminated(failed, "FAILED")
        client.set_terminated(killed, "KILLED")
        marker = train(experiment, rows=200, n_estimators=2, seed=5)  # an event that does arrive, after them
        daemon.wait_for("staging_alias_moved", 45, where=lambda e: e.get("run_id") == marker)
        seen = {e.get("run_id") for e in daemon.named("run_event_received")}
        assert marker in seen and failed not in seen and killed not in seen and "r" * 32 not in seen
        assert {e.get("status") for e in daemon.named("webhook_refused")} == {401}
    finally:
        daemon.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
