"""Kill -9 at any moment over a stream of runs, and durable retry state.

``test_kill_9_over_a_stream_of_runs``: 100 finished runs (every 10th fails the recall gate) are
logged from a background thread while the daemon is SIGKILLed at >= 20 random moments (seeded;
the seed is printed, ``CHAOS_SEED=<n>`` replays it) and restarted each time: half of them at a
random moment of its start-up (imports, config, clients), half at a random moment of its work
(counted from ``watcher_started``, right before its first poll: polls, registrations, alias moves).
After the last restart every passing run has exactly one version, no rejected run has one, every
run carries ``watcher.decision`` and ``staging`` is on the newest passing run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import decision, staging, train, versions_of

from watcher.config import load_config
from watcher.engine import Session, reconcile_once
from watcher.obs import metrics
from watcher.store import codec
from watcher.store import keys as state

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)]
TESTS = Path(__file__).parent
RUNS, KILLS = 100, 20


def _config(path: Path, tracking_uri: str, names: dict[str, str], extra: str = "") -> Path:
    path.write_text(f"""\
tracking_uri: {tracking_uri}
poll_interval_seconds: 1
retry: {{initial_seconds: 0.5, max_seconds: 2}}
{extra}watches:
  - experiment: {names["experiment"]}
    model_name: {names["model"]}
    gates:
      - metric: recall
        min: 0.0
""")
    return path


def _start(config: Path, log) -> subprocess.Popen:  # noqa: ANN001 - a binary file
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    env.pop("MLFLOW_REGISTRY_URI", None)  # another test's server, set by mlflow.set_registry_uri
    return subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def _started(log_path: Path) -> int:
    return log_path.read_bytes().count(b'"watcher_started"')


def _wait_started(log_path: Path, before: int, proc: subprocess.Popen, timeout: float) -> None:
    """Until the daemon says ``watcher_started`` (its first poll comes next), or exits, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while _started(log_path) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.timeout(1200)
def test_kill_9_over_a_stream_of_runs(client, tracking_uri, names, tmp_path):
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"chaos seed: {seed} (replay with CHAOS_SEED={seed})")
    rng = random.Random(seed)
    config = _config(tmp_path / "watcher.yaml", tracking_uri, names)
    runs: list[tuple[str, bool]] = []
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(RUNS):
                passing = i % 10 != 9
                runs.append((train(names["experiment"], "good" if passing else "no_recall",
                                   rows=200, n_estimators=2, seed=i), passing))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failed.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    kills = at_work = 0
    with open(tmp_path / "daemon.log", "ab") as log:
        log_path = tmp_path / "daemon.log"
        while kills < KILLS or producer.is_alive():
            before = _started(log_path)
            proc = _start(config, log)
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.2, 4.0))  # a random moment of its start-up: imports, config, clients
            else:  # or of its work: first poll, mid-registration, alias move, the next polls
                _wait_started(log_path, before, proc, timeout=60)
                time.sleep(rng.uniform(0.0, 2.5))
                at_work += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        producer.join()
        assert not failed, failed
        started = _started(log_path)
        final = _start(config, log)
        deadline = time.monotonic() + 300
        _wait_started(log_path, started, final, 300)  # a SIGTERM during start-up would end it before its handler exists
        experiment_id = client.get_experiment_by_name(names["experiment"]).experiment_id
        while time.monotonic() < deadline:
            found = client.search_runs([experiment_id], f"tags.`{state.DECISION}` LIKE '%'", max_results=1000)
            if len(found) >= RUNS:
                break
            time.sleep(0.3)
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=120) == 0
    print(f"chaos seed {seed}: {kills} kills ({at_work} after watcher_started) over {len(runs)} runs")
    assert kills >= KILLS and len(runs) == RUNS
    versions = versions_of(client, names["model"])
    by_run: dict[str, list] = {}
    for version in versions:
        by_run.setdefault(version.run_id, []).append(version)
    newest_passing, newest_end = None, -1
    for run_id, passing in runs:
        tags = decision(client, run_id)
        assert tags.get(state.DECISION) == ("registered" if passing else "rejected"), (run_id, tags)
        if passing:
            assert len(by_run.get(run_id, [])) == 1, f"run {run_id}: {len(by_run.get(run_id, []))} versions"
            assert tags[state.MODEL_VERSION] == str(by_run[run_id][0].version)
            end = client.get_run(run_id).info.end_time
            if end > newest_end:
                newest_passing, newest_end = run_id, end
        else:
            assert run_id not in by_run and "recall missing" in tags[state.REASON]
    assert len(versions) == RUNS - RUNS // 10
    assert staging(client, names["model"]) == str(by_run[newest_passing][0].version)


def test_a_run_that_keeps_failing_ends_as_error_and_the_count_survives_restarts(
        client, tracking_uri, names, tmp_path, monkeypatch):
    config = load_config(_config(tmp_path / "watcher.yaml", tracking_uri, names, "max_run_attempts: 3\n"))
    run_id = train(names["experiment"], rows=200, n_estimators=2)
    before = metrics.DECISIONS.labels(model=names["model"], decision="error")._value.get()

    def refused(*_args, **_kwargs):
        raise RuntimeError("registry refused the request (HTTP 500)")

    monkeypatch.setattr("watcher.engine.runs.resolve_model", refused)
    for attempt in (1, 2):  # a fresh Session each time: a restart forgets nothing
        report = reconcile_once(client, config, session=Session())
        assert not report.ok and not report.poll_failed
        tags = client.get_run(run_id).data.tags
        assert state.DECISION not in tags
        counter = codec.load(tags[state.ATTEMPTS])
        assert counter["count"] == attempt and "registry refused" in counter["last_error"]
    report = reconcile_once(client, config, session=Session())
    tags = decision(client, run_id)
    assert tags[state.DECISION] == "error"
    assert "failed 3 times" in tags[state.REASON] and "registry refused the request" in tags[state.REASON]
    assert metrics.DECISIONS.labels(model=names["model"], decision="error")._value.get() == before + 1
    assert versions_of(client, names["model"]) == []
    monkeypatch.undo()
    reconcile_once(client, config, session=Session())  # decided: never retried again
    assert decision(client, run_id)[state.DECISION] == "error"
