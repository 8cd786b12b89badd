"""Leader election on the machine's PostgreSQL: two replicas, one acts.

In-process: two :class:`Leader` objects compete for one model; the holder's session is killed with
``pg_terminate_backend`` and the other takes over; the engine stops writing the moment the lock is
gone. As processes: two daemons on one tracking server register every run exactly once, and after
kill -9 of the leader the standby registers a new run within 3 of its polls.
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

from watcher.config import HaConfig, load_config
from watcher.engine import Session, reconcile_once
from watcher.service.leader import Leader, lock_key
from watcher.store import keys as state

TESTS = Path(__file__).parent
LOCK_URL = "postgresql://postgres@127.0.0.1:5432/test"
POLL_SECONDS = 2



def _terminate(pid: int | None) -> None:
    import psycopg

    assert pid is not None
    with psycopg.connect(LOCK_URL, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]  # waits for the exit


def test_lock_key_is_stable_and_signed_64_bit():
    assert lock_key("customer_churn_model") == lock_key("customer_churn_model")
    assert lock_key("customer_churn_model") != lock_key("customer_churn_model_2")
    assert -(2**63) <= lock_key("x") < 2**63
    assert lock_key("customer_churn_model") == -1100585562150105595  # sha256("registry-watcher:" + name)[:8]


def test_two_leaders_compete_and_a_killed_session_hands_over(lock_url, names):
    model = names["model"]
    a, b = Leader(HaConfig(lock_url=lock_url)), Leader(HaConfig(lock_url=lock_url))
    try:
        with captured() as logs:
            assert a.acquire(model) and a.holds(model)
            assert not b.acquire(model) and not b.acquire(model)  # standby, said once
            assert not b.holds(model)
        assert len(events(logs, "leadership_acquired")) == 1 and len(events(logs, "standby")) == 1
        _terminate(a.backend_pid())
        with captured() as logs:
            assert not a.holds(model)  # the check right before a write notices at once
            _wait(lambda: b.acquire(model), 20, "the lock to be freed by the terminated session")
            assert not a.acquire(model)  # reconnects, and is now the standby
        [lost] = events(logs, "leadership_lost")
        assert lost["log_level"] == "error" and lost["model_name"] == model
        b.close()
        _wait(lambda: a.acquire(model), 20, "the closed session to free the lock")  # a clean stop hands over
    finally:
        a.close()
        b.close()


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_engine_stops_writing_once_the_lock_is_lost(client, tracking_uri, lock_url, names, tmp_path):
    config_path = tmp_path / "watcher.yaml"
    # one run at a time: with ``workers`` N, up to N writes already in flight may still complete
    config_path.write_text(_yaml(tracking_uri, names, lock_url) .replace("log: {level: DEBUG}", "log: {level: DEBUG}\nworkers: 1"))
    config = load_config(config_path)
    first = train(names["experiment"], rows=200, n_estimators=2, seed=1)
    second = train(names["experiment"], rows=200, n_estimators=2, seed=2)
    leader, other = Leader(config.ha), Leader(config.ha)
    killed: list[str] = []

    def kill_session_after_first_decision(point: str) -> None:
        if point == "after_decision" and not killed:
            killed.append(point)
            _terminate(leader.backend_pid())

    try:
        with captured() as logs:
            report = reconcile_once(client, config, leader=leader, crash=kill_session_after_first_decision)
        assert [r for r, _ in report.watches[0].registered] == [first]
        assert state.DECISION not in decision(client, second)  # no write after the loss
        assert events(logs, "leadership_lost")
        assert reconcile_once(client, config, session=Session(), leader=other).watches[0].registered[0][0] == second
        assert sorted(v.run_id for v in versions_of(client, names["model"])) == sorted([first, second])
    finally:
        leader.close()
        other.close()


def _yaml(tracking_uri: str, names: dict[str, str], lock_url: str) -> str:
    return f"""\
tracking_uri: {tracking_uri}
poll_interval_seconds: {POLL_SECONDS}
log: {{level: DEBUG}}
ha: {{lock_url: "{lock_url}"}}
watches:
  - experiment: {names["experiment"]}
    model_name: {names["model"]}
    gates:
      - metric: recall
        min: 0.0
"""


def _lines(path: Path) -> list[dict]:
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            pass  # a line being written right now
    return out


def _wait(predicate, timeout: float = 180, what: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
@pytest.mark.timeout(600)
def test_two_daemons_one_acts_and_the_standby_takes_over_after_kill_9(client, tracking_uri, lock_url, names, tmp_path):
    config = tmp_path / "watcher.yaml"
    config.write_text(_yaml(tracking_uri, names, lock_url))
    runs = [train(names["experiment"], rows=200, n_estimators=2, seed=i) for i in range(3)]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    env.pop("MLFLOW_REGISTRY_URI", None)  # another test's server, set by mlflow.set_registry_uri
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    procs = {name: subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config)],
                                    stdout=open(path, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
             for name, path in logs.items()}
    try:
        def roles() -> dict[str, str]:
            found = {}
            for name, path in logs.items():
                seen = {e["event"] for e in _lines(path)}
                if "leadership_acquired" in seen:
                    found[name] = "leader"
                elif "standby" in seen:
                    found[name] = "standby"
            return found

        _wait(lambda: len(roles()) == 2, what="both replicas to settle")
        assert sorted(roles().values()) == ["leader", "standby"]
        leader = next(n for n, r in roles().items() if r == "leader")
        standby = next(n for n, r in roles().items() if r == "standby")
        _wait(lambda: all(state.DECISION in decision(client, r) for r in runs), what="the first runs")
        assert not {"run_registered", "run_rejected", "run_failed"} & {e["event"] for e in _lines(logs[standby])}
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(timeout=30)
        new = train(names["experiment"], rows=200, n_estimators=2, seed=9)
        ended = len(_lines(logs[standby]))  # the run has ended: the standby's lines from here on come after

        def after_end() -> list[dict]:
            return _lines(logs[standby])[ended:]

        def registering_poll() -> int | None:
            """The number of the standby's poll (after the run's end) that registered it, by log order."""
            polls = [e for e in after_end() if e["event"] == "poll_completed"]
            return next((i + 1 for i, e in enumerate(polls) if e.get("registered")), None)

        _wait(lambda: registering_poll() is not None, what="the standby's poll that registers the new run")
        assert state.DECISION in decision(client, new)
        assert any(e["event"] == "run_registered" and e.get("run_id") == new for e in after_end())
        registering = registering_poll()
        assert registering is not None and registering <= 3, f"registered in poll {registering} after the run ended"
        assert "leadership_acquired" in {e["event"] for e in _lines(logs[standby])}
        versions = versions_of(client, names["model"])
        assert sorted(v.run_id for v in versions) == sorted([*runs, new])  # 0 duplicates
        procs[standby].send_signal(signal.SIGTERM)
        assert procs[standby].wait(timeout=60) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_ha_config_from_the_file_or_the_environment(tmp_path, monkeypatch):
    from watcher.config import ConfigError

    path = tmp_path / "watcher.yaml"
    path.write_text("tracking_uri: http://127.0.0.1:1\nwatches:\n  - {experiment: e, model_name: m}\n")
    assert load_config(path).ha is None and load_config(path).max_run_attempts == 5
    monkeypatch.setenv("WATCHER_HA__LOCK_URL", "postgresql://w:pw@db:5432/watcher")
    config = load_config(path)
    assert config.ha is not None and config.ha.lock_url.endswith("@db:5432/watcher")
    assert config.ha.keepalives_idle_seconds == 10 and config.retry.max_seconds == 30
    monkeypatch.delenv("WATCHER_HA__LOCK_URL")
    path.write_text(path.read_text() + "ha: {lock_url: 'mysql://db/x'}\n")
    with pytest.raises(ConfigError, match="ha.lock_url"):
        load_config(path)
