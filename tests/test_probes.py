"""Probes and gauges under HA: /readyz names the dependency that is down (lock database, tracking
server), a standby pings the tracking server and counts its polls as ``standby``, the new gauges,
and every counter series at 0 from the start (issue 18, points 1 and 2)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from conftest import in_process, issue_yaml
from daemon_proc import LiveClient
from prometheus_client import REGISTRY

from watcher.config import HttpConfig, load_config
from watcher.engine.report import TickReport, WatchReport
from watcher.obs import metrics
from watcher.service.health import Health, after_poll, init_metrics
from watcher.service.http import build_app
from watcher.service.leader import Leader, lock_key
from watcher.service.poller import Poller
from watcher.testing import free_port

LOCK_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)



def _config(tmp_path: Path, tracking_uri: str, model: str, lock: str | None):
    text = issue_yaml(tracking_uri, f"exp_{model}", model)
    if lock:
        text += f"ha:\n  lock_url: {lock}\n  connect_timeout_seconds: 1\n"
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return load_config(path)


def test_every_counter_series_exists_at_zero_after_start_up(tmp_path: Path):
    model = f"m_zero_{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, "http://127.0.0.1:9", model, None)
    assert _value("registry_watcher_decisions_total", model=model, decision="error") is None
    init_metrics(config)
    for decision in ("registered", "rejected", "error"):
        assert _value("registry_watcher_decisions_total", model=model, decision=decision) == 0.0
    for outcome in ("ok", "failed"):
        assert _value("registry_watcher_scorings_total", model=model, outcome=outcome) == 0.0
    for outcome in ("ok", "error", "standby"):
        assert _value("registry_watcher_polls_total", outcome=outcome) is not None
    later = f"m_later_{uuid.uuid4().hex[:6]}"  # a watch discovered at run time
    metrics.init_model(later)
    assert _value("registry_watcher_scorings_total", model=later, outcome="failed") == 0.0
    metrics.record_scoring(later, ok=False)
    metrics.init_model(later)  # idempotent: keeps the count
    assert _value("registry_watcher_scorings_total", model=later, outcome="failed") == 1.0


@in_process
def test_standby_pings_the_tracking_server_and_counts_standby_not_ok(tmp_path: Path, tracking_uri: str, client,
                                                                      lock_url: str):
    model = f"m_standby_{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, tracking_uri, model, lock_url)
    leader = Leader(config.ha)
    health = Health.for_config(config, leader)
    poller = Poller(client, config, leader=leader, health=health)
    before = {o: _value("registry_watcher_polls_total", outcome=o) or 0.0 for o in ("ok", "standby")}
    with psycopg.connect(lock_url, autocommit=True) as other:  # another replica leads the model
        other.execute("SELECT pg_advisory_lock(%s)", (lock_key(model),))
        metrics.set_tracking_up(False)
        report = poller.poll()
        assert report is not None and [w.standby for w in report.watches] == [True]
        assert _value("registry_watcher_polls_total", outcome="standby") == before["standby"] + 1
        assert _value("registry_watcher_polls_total", outcome="ok") == before["ok"]
        assert _value("registry_watcher_tracking_server_up") == 1.0  # the standby's ping answered
        assert (_value("registry_watcher_last_successful_poll_timestamp_seconds") or 0) > 0
        assert _value("registry_watcher_lock_db_up") == 1.0
        ready, detail = health.ready()
        assert ready, detail
        assert detail["down"] == [] and detail["watches"] == {model: "standby"}
        assert detail["lock_database"] == "up" and detail["tracking_server"] == "up"
    leader.close()


@in_process
def test_lock_database_down_makes_readyz_503_naming_it(tmp_path: Path, tracking_uri: str, client):
    model = f"m_nolock_{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, tracking_uri, model, f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    leader = Leader(config.ha)
    health = Health.for_config(config, leader)
    poller = Poller(client, config, leader=leader, health=health)
    report = poller.poll()
    assert report is not None and report.watches[0].standby
    assert leader.db_up is False and _value("registry_watcher_lock_db_up") == 0.0
    assert _value("registry_watcher_tracking_server_up") == 1.0
    live = LiveClient(build_app(health, HttpConfig()))
    try:
        answer = live.get("/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["status"] == "not_ready" and body["down"] == ["lock_database"]
        assert body["lock_database"] == "down" and body["watches"] == {model: "standby"}
        assert live.get("/healthz").status_code == 200  # restarting would not bring the database back
    finally:
        live.close()


def test_a_standby_that_cannot_reach_the_tracking_server_is_not_ready(tmp_path: Path):
    from watcher.store.client import make_client

    model = f"m_dark_{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}", model, None)
    health = Health.for_config(config)
    report = TickReport([WatchReport(model, "e", standby=True)])
    health.poll_finished(report, failed=False)
    assert after_poll(make_client(config), report, unreachable=False, health=health) == "standby"
    assert _value("registry_watcher_tracking_server_up") == 0.0
    ready, detail = health.ready()
    assert not ready and detail["down"] == ["tracking_server"] and detail["tracking_server"] == "down"
    assert "lock_database" not in detail  # no ha: no lock database to report


def test_a_failed_poll_marks_the_tracking_server_down_and_a_good_one_up():
    health = Health(["m"], 30.0)
    failed = TickReport([WatchReport("m", "e", poll_failed=True, unreachable=True)])
    health.poll_finished(failed, failed=True)
    assert after_poll(None, failed, unreachable=True, health=health) == "error"  # type: ignore[arg-type]
    assert _value("registry_watcher_tracking_server_up") == 0.0
    assert health.ready()[1]["down"] == ["tracking_server"]
    stamp = _value("registry_watcher_last_successful_poll_timestamp_seconds") or 0
    good = TickReport([WatchReport("m", "e")])
    health.poll_finished(good, failed=False)
    assert after_poll(None, good, unreachable=False, health=health) == "ok"  # type: ignore[arg-type]
    assert _value("registry_watcher_tracking_server_up") == 1.0
    assert (_value("registry_watcher_last_successful_poll_timestamp_seconds") or 0) >= stamp
    assert health.ready() == (True, {"watches": {"m": "ok"}, "down": [], "tracking_server": "up"})
