"""Issue 26, items 3 and 7: back at once after an outage; quiet bursts.

* During an outage the server's ``/health`` is probed whatever the backoff; the first answer after
  the server was seen down ends the backoff (once: a server that answers ``/health`` while polls
  still fail must go down again first). On a fake clock, then as a process against a real server
  stopped and started again on the same port, with a 30-300 s backoff: ``/readyz`` is 200 again
  and the fleet polled long before the backoff would have allowed (the outage is recovered after
  one failed poll, in less than the backoff's first 30 s), and a run logged then is registered.
* A tick due while the previous one still runs is coalesced: counted, said at most once a
  minute, and never APScheduler's "maximum number of running instances reached" warning.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
from daemon_proc import Daemon, get
from helpers import captured, events, train

from watcher.config import RetryConfig
from watcher.obs import metrics_fleet
from watcher.service.backoff import EARLY_GAP_SECONDS, Backoff
from watcher.service.ticks import Coalesced, PollScheduler
from watcher.testing import free_port, kill, start_mlflow_server

RETRY = RetryConfig(initial_seconds=30, max_seconds=300)


def test_a_probe_answer_ends_the_backoff_once_per_return():
    now = [0.0]
    backoff = Backoff(clock=lambda: now[0])
    assert not backoff.needs_probe()  # no outage: nothing to probe
    backoff.failed("ConnectionError: refused", True, RETRY)
    now[0] += 2
    assert backoff.waiting() and backoff.needs_probe()
    assert not backoff.probe_answered(False)  # still down: the backoff stands
    now[0] += 2
    assert backoff.probe_answered(True)  # back: the next poll runs now, not 26 s later
    assert not backoff.waiting() and not backoff.needs_probe()
    backoff.failed("ConnectionError: refused", True, RETRY)  # /health answers but the poll still fails
    now[0] += 2
    assert not backoff.probe_answered(True) and backoff.waiting()  # not at once: seen down, or a gap first
    assert not backoff.probe_answered(False)
    assert backoff.probe_answered(True)  # it went down and came back
    backoff.failed("ConnectionError: refused", True, RETRY)
    now[0] += EARLY_GAP_SECONDS * 2 ** 2 - 0.5
    assert not backoff.probe_answered(True)  # answers, never seen down: the gap doubles per early end
    now[0] += 0.5
    assert backoff.probe_answered(True)
    backoff.succeeded()
    assert not backoff.needs_probe() and backoff.failures == 0


def test_a_non_outage_failure_is_not_probed():
    backoff = Backoff(clock=lambda: 0.0)
    backoff.failed("RestException: 500", False, RETRY)
    assert backoff.waiting() and not backoff.needs_probe() and not backoff.probe_answered(True)


def test_a_tick_due_while_one_runs_is_coalesced_counted_and_said_once():
    release, started, runs = threading.Event(), threading.Event(), []

    def slow() -> None:
        runs.append(1)
        started.set()
        release.wait(30)

    job = Coalesced(slow)
    before = metrics_fleet.TICKS_SKIPPED._value.get()
    with captured() as logs:
        worker = threading.Thread(target=job)
        worker.start()
        assert started.wait(30)
        for _ in range(5):
            job()  # due while the first still runs: returns at once
        assert job.run_again()  # a kick: the one in hand runs once more right after
        release.set()
        worker.join(30)
    assert len(runs) == 2 and metrics_fleet.TICKS_SKIPPED._value.get() - before == 5
    [said] = events(logs, "ticks_coalesced")
    assert said["skipped"] == 1 and said["log_level"] == "info"  # the first, then at most once a minute
    assert not job.run_again()  # idle: a kick starts a run through the scheduler


def test_a_slow_poll_under_the_scheduler_logs_no_apscheduler_warning(caplog):
    release, calls = threading.Event(), []
    before = metrics_fleet.TICKS_SKIPPED._value.get()
    scheduler = PollScheduler(0.05)
    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        scheduler.start(lambda: (calls.append(1), release.wait(30)))
        deadline = time.monotonic() + 30
        while metrics_fleet.TICKS_SKIPPED._value.get() - before < 3:
            assert time.monotonic() < deadline, "no tick was coalesced"
            time.sleep(0.05)
        release.set()
        scheduler.shutdown()
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
    assert calls


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_after_an_outage_readyz_is_back_long_before_the_backoff(tmp_path: Path, names, monkeypatch):
    workdir = tmp_path / "mlflow"
    workdir.mkdir()
    backend, port, http_port = f"sqlite:///{workdir / 'mlflow.db'}", free_port(), free_port()
    server, uri = start_mlflow_server(backend, workdir, port=port)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = tmp_path / "watcher.yaml"
    config.write_text(f"""tracking_uri: {uri}
poll_interval_seconds: 1
retry: {{initial_seconds: {RETRY.initial_seconds}, max_seconds: {RETRY.max_seconds}}}
http: {{host: 127.0.0.1, port: {http_port}}}
watches:
  - experiment: {names["experiment"]}
    model_name: {names["model"]}
    artifact_path: model
    gates:
      - metric: recall
        min: 0.0
""")
    daemon = Daemon(config)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 120
        while get(f"{base}/readyz")[0] != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.2)
        kill(server)
        down = daemon.wait_for("tracking_server_unreachable", timeout=60)
        assert down["retry_in_seconds"] == RETRY.initial_seconds
        server, _ = start_mlflow_server(backend, workdir, port=port)  # the outage: as long as a restart takes
        back = daemon.wait_for("tracking_server_back", timeout=60)
        recovered = daemon.wait_for("tracking_server_recovered", timeout=60)
        seen = [(e.get("event"), e.get("timestamp"), e.get("error", "")[:80]) for e in daemon.events
                if str(e.get("event", "")).startswith(("tracking_server", "poll_", "tick_"))]
        assert recovered["outage_seconds"] < RETRY.initial_seconds, seen  # polled again before the backoff allowed
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["tracking_server"] == "up" and back["probe_url"].endswith("/health")
        run_id = train(names["experiment"])
        registered = daemon.wait_for("run_registered", timeout=60, where=lambda e: e.get("run_id") == run_id)
        assert registered["model_name"] == names["model"]
    finally:
        assert daemon.stop() == 0
        kill(server)
