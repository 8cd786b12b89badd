"""Tracking server outage.

* As a process: the server stops right after runs finished, then comes back on the same address
  (a short outage, with a short backoff). The daemon stays up, says so once (error) and once more on
  recovery (info, with the outage's length), and within 60 s of the server's return has registered
  every run, once.
* The default backoff against a fake clock: after a 60 s outage the first poll comes at most
  ``retry.max_seconds`` (plus one poll interval) after the server's return, the outage said once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import captured, decision, events, train, versions_of

from watcher.config import RetryConfig
from watcher.service.backoff import Backoff
from watcher.store import keys as state
from watcher.testing import start_mlflow_server, stop

TESTS = Path(__file__).parent
OUTAGE_SECONDS = 8
"""The real outage of the process test; the 60 s one runs on a fake clock."""
RUNS = 3


def _lines(path: Path) -> list[dict]:
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            pass
    return out


def test_after_a_60s_outage_the_default_backoff_polls_within_its_cap_of_the_return():
    """The daemon's loop on a fake clock: a poll every interval, skipped while the backoff waits."""
    outage, interval, retry = 61.0, 2.0, RetryConfig()  # the default retry settings; back just after a poll
    now = [0.0]
    backoff = Backoff(clock=lambda: now[0])
    polls = 0
    with captured() as logs:
        while True:
            if not backoff.waiting():
                polls += 1
                if now[0] < outage:
                    backoff.failed("ConnectionError: Connection refused", True, retry)
                else:
                    backoff.succeeded()
                    break
            now[0] += interval
    assert outage <= now[0] <= outage + retry.max_seconds + interval, now[0]
    assert polls == 7, polls  # waits of 2, 4, 8, 16, 30, 30 s: a dead server costs a few cheap requests
    [down] = events(logs, "tracking_server_unreachable")
    [up] = events(logs, "tracking_server_recovered")
    assert down["log_level"] == "error" and down["retry_in_seconds"] == retry.initial_seconds
    assert up["log_level"] == "info" and up["outage_seconds"] == now[0] and up["failed_polls"] == polls - 1
    assert {e["log_level"] for e in events(logs, "poll_failed")} == {"debug"}
    assert backoff.failures == 0 and not backoff.waiting()


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_an_outage_loses_nothing_and_is_said_once(tmp_path, names, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    backend = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a file: the data outlives the server process
    server, uri = start_mlflow_server(backend, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri, uri)
    config = tmp_path / "watcher.yaml"  # a short backoff: the default one is the fake-clock test's
    config.write_text(f"""\
tracking_uri: {uri}
poll_interval_seconds: 1
retry: {{initial_seconds: 0.5, max_seconds: 2}}
watches:
  - experiment: {names["experiment"]}
    model_name: {names["model"]}
    gates:
      - metric: recall
        min: 0.0
""")
    log = tmp_path / "daemon.log"
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    env.pop("MLFLOW_REGISTRY_URI", None)  # another test's server, set by mlflow.set_registry_uri
    daemon = subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config)],
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
    try:
        deadline = time.monotonic() + 120
        while "experiment_missing" not in {e["event"] for e in _lines(log)}:  # its first poll is done
            assert time.monotonic() < deadline and daemon.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        runs = [train(names["experiment"], rows=200, n_estimators=2, seed=i) for i in range(RUNS)]
        stop(server)  # right after the runs finished
        time.sleep(OUTAGE_SECONDS)  # the outage itself (not a wait for a tick)
        server, _ = start_mlflow_server(backend, tmp_path, port=port)
        back = time.monotonic()
        while not all(state.DECISION in decision(client, r) for r in runs):
            assert time.monotonic() - back < 60, "not every run registered within 60 s of the server's return"
            time.sleep(0.2)
        print(f"every run decided {time.monotonic() - back:.1f}s after the server's return")
        assert daemon.poll() is None  # it stayed up
        for run_id in runs:
            assert decision(client, run_id)[state.DECISION] == "registered"
            assert len(versions_of(client, names["model"], run_id)) == 1
        assert len(versions_of(client, names["model"])) == RUNS
        deadline = time.monotonic() + 30
        while "tracking_server_recovered" not in {e["event"] for e in _lines(log)}:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        lines = _lines(log)
        [down] = [e for e in lines if e["event"] == "tracking_server_unreachable"]
        [up] = [e for e in lines if e["event"] == "tracking_server_recovered"]
        assert down["level"] == "error" and up["level"] == "info"
        assert OUTAGE_SECONDS - 2 <= up["outage_seconds"] <= OUTAGE_SECONDS + 60  # + the server's start-up
        loud = [e["event"] for e in lines if e["level"] in ("error", "critical")]
        assert loud == ["tracking_server_unreachable"], loud
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        stop(server)
