"""Point 2 of issue 19: SIGHUP re-reads the config file (a real daemon subprocess).

A good file takes effect between ticks (``config_reloaded``, a new watch is polled) and keeps the
HTTP server; a bad one is ``config_reload_failed`` with the errors exactly as ``check-config``
prints them, and the old config stays in force.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from daemon_proc import Daemon, get
from mlflow import MlflowClient

from watcher.config import ConfigError, load_config
from watcher.testing import free_port

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)]


def _yaml(tracking_uri: str, port: int, experiments: list[str], min_recall: str = "0.2") -> str:
    text = f"""tracking_uri: {tracking_uri}
poll_interval_seconds: 1
log: {{level: INFO, format: json}}
http: {{host: 127.0.0.1, port: {port}}}
watches:
"""
    for name in experiments:
        text += f"  - experiment: {name}\n    model_name: {name}_model\n    gates: [{{metric: recall, min: {min_recall}}}]\n"
    return text


def _run(client: MlflowClient, experiment_id: str) -> str:
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "recall", 0.5)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_sighup_applies_a_good_file_and_keeps_the_old_config_on_a_bad_one(tmp_path: Path, tracking_uri: str,
                                                                         client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, second = f"hup_a_{suffix}", f"hup_b_{suffix}"
    first_id, second_id = client.create_experiment(first), client.create_experiment(second)
    port = free_port()
    path = tmp_path / "watcher.yaml"
    path.write_text(_yaml(tracking_uri, port, [first]))
    daemon = Daemon(path)
    try:
        daemon.wait_for("watcher_started", 60)
        daemon.wait_for("http_listening", 30)
        # a good file: a second watch
        path.write_text(_yaml(tracking_uri, port, [first, second]))
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_for("config_reloaded", 30)
        assert reloaded["watches"] == 2 and reloaded["level"] == "info"
        assert reloaded["changed"] == ["watches"]
        run_b = _run(client, second_id)
        daemon.wait_for("run_rejected", 30, lambda e: e.get("run_id") == run_b)  # no model logged
        assert len(daemon.named("http_listening")) == 1  # the http block did not change: kept
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200

        # a bad file: the errors as check-config prints them, and the old config stays
        path.write_text(_yaml(tracking_uri, port, [first], min_recall="high"))
        with pytest.raises(ConfigError) as expected:
            load_config(path)
        daemon.proc.send_signal(signal.SIGHUP)
        failed = daemon.wait_for("config_reload_failed", 30)
        assert failed["level"] == "error"
        assert failed["error"] == str(expected.value)
        assert "watches.0.gates.0.metric.min" in failed["error"]
        run_a, run_b2 = _run(client, first_id), _run(client, second_id)
        daemon.wait_for("run_rejected", 30, lambda e: e.get("run_id") == run_a)
        daemon.wait_for("run_rejected", 30, lambda e: e.get("run_id") == run_b2)  # the second watch is still on
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
