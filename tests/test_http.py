"""HTTP endpoints: /healthz, /readyz and /metrics in-process, and readiness across a real server restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import issue_yaml
from daemon_proc import Daemon, LiveClient, get, metric_value, wait_status
from helpers import train

from demo.churn import customer_data
from watcher.config import HttpConfig, load_config
from watcher.engine.promotion import promote
from watcher.engine.report import TickReport, WatchReport
from watcher.service.health import Health
from watcher.service.http import build_app
from watcher.service.poller import Poller
from watcher.testing import free_port, kill, start_mlflow_server


def _health(**kw: object) -> Health:
    return Health(["m1", "m2"], liveness_seconds=30.0, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def serve():
    """Serve an app for real on a free loopback port; closed after the test."""
    served: list[LiveClient] = []

    def start(app):  # noqa: ANN001, ANN202
        served.append(LiveClient(app))
        return served[-1]

    yield start
    for live in served:
        live.close()


def test_healthz_follows_the_loop_heartbeat(serve):
    health = _health()
    client = serve(build_app(health, HttpConfig()))
    assert client.get("/healthz").status_code == 200
    health.heartbeat = time.monotonic() - 31  # the loop has not run for longer than the limit
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "stalled"
    health.poll_started()  # a long tick in progress is alive
    health.heartbeat = time.monotonic() - 120
    assert client.get("/healthz").status_code == 200
    health.poll_finished(None, failed=False)
    assert client.get("/healthz").status_code == 200


def test_readyz_needs_every_watch_polled_and_flips_on_the_first_failure(serve):
    health = _health()
    client = serve(build_app(health, HttpConfig()))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["watches"] == {"m1": "pending", "m2": "pending"}
    health.poll_finished(TickReport([WatchReport("m1", "e1")]), failed=False)
    assert client.get("/readyz").status_code == 503  # m2 not polled yet
    health.poll_finished(TickReport([WatchReport("m1", "e1"), WatchReport("m2", "e2")]), failed=False)
    assert client.get("/readyz").status_code == 200
    health.poll_finished(TickReport([WatchReport("m1", "e1", poll_failed=True)]), failed=True)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["watches"]["m1"] == "failed"
    health.poll_finished(None, failed=True)  # the tick itself raised: nothing is known to work
    assert client.get("/readyz").json()["watches"] == {"m1": "failed", "m2": "failed"}
    health.poll_finished(TickReport([WatchReport("m1", "e1"), WatchReport("m2", "e2")]), failed=False)
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_webhook_route_is_absent_without_a_secret(serve):
    client = serve(build_app(_health(), HttpConfig()))
    assert client.post("/webhooks/mlflow", content=b"{}").status_code == 404


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_metrics_match_what_happened(client, make_config, names, tmp_path: Path, serve):
    data = tmp_path / "data"
    data.mkdir()
    customer_data(rows=200, seed=5, label=False).to_csv(data / "score.csv", index=False)
    config = make_config(extra_watch=(
        "    scoring:\n      input: data/score.csv\n"
        f"      experiment: scoring_{names['model']}\n"))
    model = names["model"]
    app = serve(build_app(Health.for_config(config), HttpConfig()))
    before = app.get("/metrics").text
    train(names["experiment"])
    train(names["experiment"], "shuffled", seed=3)
    train(names["experiment"], seed=11)
    poller = Poller(client, config)
    assert poller.poll().ok
    promote(client, config.watches[0], None, "release", "alice")
    assert poller.poll().watches[0].scored

    response = app.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    decisions = "registry_watcher_decisions_total"
    assert metric_value(text, decisions, model=model, decision="registered") == 2
    assert metric_value(text, decisions, model=model, decision="rejected") == 1
    assert metric_value(text, "registry_watcher_scorings_total", model=model, outcome="ok") == 1
    assert metric_value(text, "registry_watcher_scorings_total", model=model, outcome="failed") is None
    assert metric_value(text, "registry_watcher_leader", model=model) == 1

    def delta(name: str, **labels: str) -> float:
        return (metric_value(text, name, **labels) or 0) - (metric_value(before, name, **labels) or 0)

    # three ticks: the first poll() found work, so it looked again at once; then the scoring poll
    assert delta("registry_watcher_polls_total", outcome="ok") == 3
    assert delta("registry_watcher_polls_total", outcome="error") == 0
    # both passing runs were decided in one page: staging moved once, to the newer one
    assert delta("registry_watcher_run_to_staging_seconds_count") == 1
    assert delta("registry_watcher_run_to_staging_seconds_sum") > 0
    from prometheus_client.parser import text_string_to_metric_families

    types = {family.name: family.type for family in text_string_to_metric_families(text)
             if family.name.startswith("registry_watcher_") and not family.name.endswith("_created")
             and family.name != "registry_watcher_lock_db_up"}  # ha only: present if an earlier test led
    assert types.items() >= {"registry_watcher_decisions": "counter", "registry_watcher_polls": "counter",
                              "registry_watcher_scorings": "counter", "registry_watcher_leader": "gauge",
                              "registry_watcher_run_to_staging_seconds": "histogram",
                              "registry_watcher_tracking_server_up": "gauge",
                              "registry_watcher_last_successful_poll_timestamp_seconds": "gauge",
                              "registry_watcher_protected_alias_changes": "counter"}.items()  # and each capability's
    assert metric_value(text, "registry_watcher_tracking_server_up") == 1


@pytest.mark.integration
def test_readyz_goes_503_and_back_across_a_server_stop_and_restart(tmp_path: Path):
    workdir = tmp_path / "mlflow"
    workdir.mkdir()
    backend, port, http_port = f"sqlite:///{workdir / 'mlflow.db'}", free_port(), free_port()
    server, uri = start_mlflow_server(backend, workdir, port=port)
    config_path = tmp_path / "watcher.yaml"
    config_path.write_text(issue_yaml(uri, "ready_exp", "ready_model").replace(
        "poll_interval_seconds: 10", "poll_interval_seconds: 1")
        + f"http: {{host: 127.0.0.1, port: {http_port}}}\nretry: {{initial_seconds: 0.5, max_seconds: 1}}\n")
    load_config(config_path)
    daemon = Daemon(config_path)
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_status(f"{base}/readyz", 200, timeout=90)
        kill(server)  # the tracking server goes down (and its port with it)
        went_down = time.monotonic()
        while get(f"{base}/readyz")[0] != 503:
            assert get(f"{base}/healthz")[0] == 200
            assert time.monotonic() - went_down < 15, "readyz still 200 15 s after the server went down"
            time.sleep(0.2)
        daemon.wait_for("tracking_server_unreachable", timeout=30)
        server, _ = start_mlflow_server(backend, workdir, port=port)
        deadline = time.monotonic() + 90
        while get(f"{base}/readyz")[0] != 200:
            assert get(f"{base}/healthz")[0] == 200
            assert time.monotonic() < deadline, "readyz not 200 again after the restart"
            time.sleep(0.2)
        daemon.wait_for("tracking_server_recovered", timeout=30)
    finally:
        assert daemon.stop() == 0
        kill(server)


def test_a_busy_port_is_a_startup_error_not_a_silent_daemon():
    import socket

    from watcher.service.http import HttpServer

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = HttpServer(build_app(_health(), HttpConfig()), HttpConfig(host="127.0.0.1", port=busy.getsockname()[1]))
        with pytest.raises(RuntimeError, match="could not listen"):
            server.start(timeout_s=10)
