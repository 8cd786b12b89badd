"""Outgoing events end to end: a daemon, a real MLflow server and a local HTTP receiver.

1. A staged version produces an ``alias.moved`` event (binary mode, ``webhook-id`` = ``ce-id``, a
   Standard Webhooks signature that verifies, ``models:/M/V``); a rejected run a ``run.decided`` with reasons.
2. ``events list`` shows it delivered; ``events replay --since`` sends it again: same id, a valid signature.
3. The receiver answers 503 and the daemon is killed with SIGKILL in the middle: once the receiver is
   back and the daemon restarted, every decision and move arrives, one id per event, per model in order.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest
from daemon_proc import Daemon
from events_receiver import Receiver
from helpers import train
from standardwebhooks import Webhook

from watcher.cli import main

pytestmark = pytest.mark.integration
SECRET = "whsec_" + "c2VjcmV0LWZvci1ldmVudHMtdGVzdHMtMTIzNDU2"


def _config(tmp_path: Path, uri: str, receiver: Receiver, experiment: str, model: str) -> Path:
    text = (f"tracking_uri: {uri}\npoll_interval_seconds: 0.5\nlog: {{level: DEBUG}}\n"
            f"watches:\n  - experiment: {experiment}\n    model_name: {model}\n"
            "    gates: [{metric: recall, min: 0.0}]\n"
            f"events:\n  source: registry-watcher/test\n  outbox_path: {tmp_path / 'outbox.sqlite'}\n"
            f"  outputs:\n    - {{name: cd, type: http, url: '{receiver.url}', secret: '{SECRET}', "
            "retry_initial_seconds: 0.2, retry_max_seconds: 1, timeout_seconds: 5}\n")
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return path


def _cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (the same code as ``registry-watcher``, without a second start-up):
    (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([*args, "--config", str(config)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _data(request) -> dict:
    return json.loads(request.body)


def _of(requests, short: str) -> list:
    return [r for r in requests if r.headers["ce-type"] == f"io.registry-watcher.{short}"]


@pytest.mark.timeout(600)
def test_moves_and_rejections_arrive_signed_and_replay_with_the_same_id(sqlite_server, tmp_path, capsys):
    suffix = uuid.uuid4().hex[:8]
    experiment, model = f"events_{suffix}", f"events_model_{suffix}"
    mlflow.set_tracking_uri(sqlite_server)
    mlflow.set_experiment(experiment)
    receiver = Receiver()
    config = _config(tmp_path, sqlite_server, receiver, experiment, model)
    daemon = Daemon(config)
    try:
        daemon.wait_for("events_derived", 120, where=lambda e: e.get("why") == "startup")
        good = train(experiment, rows=200, n_estimators=2)
        moved = _of(receiver.wait(lambda got: _of(got, "alias.moved"), 90, "alias.moved"), "alias.moved")[0]
        headers, data = moved.headers, _data(moved)
        assert headers["ce-specversion"] == "1.0" and headers["ce-source"] == "registry-watcher/test"
        assert headers["ce-subject"] == model and headers["ce-time"] and headers["ce-sequence"]
        assert headers["webhook-id"] == headers["ce-id"] and headers["webhook-signature"].startswith("v1,")
        assert Webhook(SECRET).verify(moved.body, headers)["model_uri"] == f"models:/{model}/1"
        assert data["alias"] == "staging" and data["version"] == "1" and data["moved_by"] == "watcher"
        registered = _of(receiver.wait(lambda got: _of(got, "run.decided"), 60, "run.decided"), "run.decided")[0]
        assert _data(registered)["run_id"] == good and _data(registered)["decision"] == "registered"

        bad = train(experiment, "no_recall", rows=200, n_estimators=2)
        got = receiver.wait(lambda got: any(_data(r).get("run_id") == bad for r in got), 90, "the rejection")
        rejected = _data(next(r for r in got if _data(r).get("run_id") == bad))
        assert rejected["decision"] == "rejected" and rejected["reasons"] and rejected["version"] is None
        assert rejected["gates"] and {"name", "passed", "detail"} <= set(rejected["gates"][0])

        code, listed, err = _cli(capsys, config, "events", "list", "--output", "cd", "--state", "delivered", "--json")
        assert code == 0, err
        rows = {r["id"]: r for r in json.loads(listed)}
        assert rows[headers["ce-id"]]["state"] == "delivered" and rows[headers["ce-id"]]["type"] == "alias.moved"

        before = len(receiver.delivered())
        code, _, err = _cli(capsys, config, "events", "replay", "--output", "cd", "--since",
                            headers["ce-time"].replace("Z", "+00:00"))
        assert code == 0, err
        again = receiver.wait(lambda got: any(r.headers["ce-id"] == headers["ce-id"] for r in got[before:]), 60,
                              "the replay")[before:]
        resent = next(r for r in again if r.headers["ce-id"] == headers["ce-id"])
        assert resent.headers["webhook-id"] == headers["ce-id"]
        assert Webhook(SECRET).verify(resent.body, resent.headers)["version"] == "1"
        code, _, err = _cli(capsys, config, "events", "replay", "--output", "cd", "--since", "2026-01-01T00:00:00")
        assert code == 1 and err.startswith("error:")  # --since needs an offset
    finally:
        daemon.stop()
        receiver.close()


@pytest.mark.timeout(600)
def test_everything_arrives_in_order_after_503s_and_a_sigkill(sqlite_server, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    experiment, model = f"events_kill_{suffix}", f"events_kill_model_{suffix}"
    mlflow.set_tracking_uri(sqlite_server)
    mlflow.set_experiment(experiment)
    receiver = Receiver(status=503)
    config = _config(tmp_path, sqlite_server, receiver, experiment, model)
    daemon = Daemon(config)
    runs = []
    try:
        daemon.wait_for("events_derived", 120, where=lambda e: e.get("why") == "startup")
        for variant in ("good", "no_recall", "good"):
            runs.append(train(experiment, variant, rows=200, n_estimators=2))
            daemon.wait_for("poll_completed", 90, where=lambda e: e.get("registered", 0) + e.get("rejected", 0) > 0,
                            start=len(daemon.events))
        daemon.wait_for("events_delivery_failed", 60)
    finally:
        daemon.proc.kill()  # SIGKILL in the middle: events pending, attempts failed
        daemon.proc.wait(30)
    runs.append(train(experiment, "good", rows=200, n_estimators=2))  # decided after the restart
    receiver.status = 200
    daemon = Daemon(config)
    try:
        def complete(got) -> bool:
            decided = {_data(r)["run_id"] for r in _of(got, "run.decided")}
            return decided >= set(runs) and len({r.headers["ce-id"] for r in _of(got, "alias.moved")}) >= 3

        got = receiver.wait(complete, 180, "every decision and move")
    finally:
        daemon.stop()
        receiver.close()
    ids = [r.headers["ce-id"] for r in got]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    sequences = [r.headers["ce-sequence"] for r in got]
    assert sequences == sorted(sequences), "one model's events arrived out of commit order"
    every = {r.headers["ce-id"] for r in receiver.requests}
    assert every == set(ids), "an attempt carried an id that was never delivered"
    assert all(r.headers["webhook-id"] == r.headers["ce-id"] for r in receiver.requests)
