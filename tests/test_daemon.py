"""The daemon as a process: SIGTERM, kill -9 at any moment, a dead server, JSON-only output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import decision, train, versions_of

from watcher.engine import reconcile_once
from watcher.service.poller import Poller
from watcher.store import keys as state
from watcher.testing import free_port

pytestmark = pytest.mark.integration
TESTS = Path(__file__).parent


def _start(config_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    return subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _read_until(proc: subprocess.Popen, wanted: set[str], lines: list[dict]) -> str | None:
    """Read JSON lines until one of the ``wanted`` events (or EOF); returns the event seen."""
    for raw in proc.stdout:  # type: ignore[union-attr]
        lines.append(json.loads(raw))
        if lines[-1]["event"] in wanted:
            return lines[-1]["event"]
    return None


PROCESS_ONLY = pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
"""The process's own behaviour (signals, output): one backend is enough."""


@PROCESS_ONLY
def test_sigterm_stops_cleanly_with_exit_0(client, make_config, names, tmp_path):
    make_config(log="{level: DEBUG}")
    train(names["experiment"])
    proc = _start(tmp_path / "watcher.yaml")
    lines: list[dict] = []
    assert _read_until(proc, {"poll_completed"}, lines) == "poll_completed"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    lines += [json.loads(line) for line in out.splitlines()]
    assert err == "", err  # nothing bypasses the JSON log: stray stderr writes are captured as JSON on stdout
    assert all(isinstance(line, dict) and {"event", "level", "timestamp"} <= set(line) for line in lines)
    events = [line["event"] for line in lines]
    assert "shutdown_requested" in events and events[-1] == "watcher_stopped"
    assert events.count("run_registered") == 1


@pytest.mark.parametrize("tracking_uri", ["postgres"], indirect=True)  # the production backend's searches
def test_kill_9_at_any_moment_keeps_exactly_once(client, make_config, names, tmp_path):
    make_config(log="{level: DEBUG}")  # an idle tick says poll_completed (at debug): the loop's end
    runs = [train(names["experiment"], variant, seed=seed)
            for seed, variant in enumerate(["good", "shuffled", "good", "no_recall", "good", "extra_feature"])]
    decided_events = {"run_registered", "run_rejected", "staging_alias_moved", "version_repaired"}
    for _ in range(8):  # kill right after each visible step, wherever the next one is
        proc = _start(tmp_path / "watcher.yaml")
        seen = _read_until(proc, decided_events | {"poll_completed"}, [])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if seen in (None, "poll_completed"):
            break
    config = make_config()
    assert reconcile_once(client, config).ok
    for run_id in runs:
        assert decision(client, run_id)[state.DECISION] in {"registered", "rejected"}
        assert len(versions_of(client, names["model"], run_id)) <= 1
    registered = [r for r in runs if decision(client, r)[state.DECISION] == "registered"]
    assert len(registered) == 3 and len(versions_of(client, names["model"])) == 3
    last = max(versions_of(client, names["model"]), key=lambda v: int(v.tags[state.RUN_END_TIME]))
    assert str(client.get_registered_model(names["model"]).aliases["staging"]) == str(last.version)


def test_dead_server_is_an_error_event_and_backoff_not_a_crash(tmp_path, monkeypatch):
    from conftest import issue_yaml
    from helpers import captured

    from watcher.config import load_config

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would override the file's dead server
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml(f"http://127.0.0.1:{free_port()}", "e", "m"))
    config = load_config(path)
    from watcher.store.client import make_client

    poller = Poller(make_client(config), config)
    with captured() as logs:
        report = poller.poll()
        skipped = poller.poll()  # inside the backoff window: no request at all
    assert report is not None and report.poll_failed and skipped is None
    [error] = [e for e in logs if e["event"] == "tracking_server_unreachable"]
    assert error["log_level"] == "error" and error["retry_in_seconds"] == config.retry.initial_seconds
    [failed] = [e for e in logs if e["event"] == "poll_failed"]
    assert failed["log_level"] == "debug"
    assert poller.backoff.failures == 1


@PROCESS_ONLY
def test_every_line_the_process_writes_is_json(client, make_config, names, tmp_path):
    make_config(gates="      - handler: noisy_gate:noisy\n")
    train(names["experiment"])
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}", "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "watcher", "once", "--config", str(tmp_path / "watcher.yaml")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (proc.stdout + proc.stderr).splitlines()]
    assert {"event", "level", "timestamp"} <= set(lines[0])
    texts = " ".join(str(line["event"]) for line in lines)
    for expected in ("plain print from a gate", "a raw stderr write", "stdlib logging from a library",
                     "a python warning", "run_registered"):
        assert expected in texts
