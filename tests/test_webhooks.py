"""MLflow webhooks: MLflow's own signature scheme, refusals, idempotent install, and a real delivery from
a real ``mlflow server`` that makes the daemon score at once (``poll_interval_seconds: 60``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import uuid
from pathlib import Path

import mlflow
import pytest
from conftest import issue_yaml
from daemon_proc import TESTS, Daemon, LiveClient, post, wait_status
from helpers import captured, train
from mlflow import MlflowClient

from demo.churn import customer_data
from watcher.config import load_config
from watcher.engine import reconcile_once
from watcher.engine.promotion import promote
from watcher.service import webhooks
from watcher.service.health import Health
from watcher.service.http import build_app
from watcher.store import webhooks as hook_store
from watcher.testing import free_port, start_mlflow_server, stop

SECRET = "whsec-test-" + uuid.uuid4().hex
WEBHOOK_ENV = {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory):
    """An mlflow server (SQLite) allowed to deliver webhooks to loopback over plain http."""
    workdir = tmp_path_factory.mktemp("mlflow-webhooks")
    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir, env=WEBHOOK_ENV)
    yield uri
    stop(proc)


def _config(tmp_path: Path, uri: str, model: str, http_port: int = 0, poll: int = 10, scoring: bool = False):
    text = issue_yaml(uri, f"exp_{model}", model).replace("poll_interval_seconds: 10",
                                                           f"poll_interval_seconds: {poll}")
    if scoring:
        (tmp_path / "data").mkdir(exist_ok=True)
        customer_data(rows=300, seed=5, label=False).to_csv(tmp_path / "data" / "score.csv", index=False)
        text += f"    scoring:\n      input: data/score.csv\n      experiment: scoring_{model}\n"
    text += f"http:\n  host: 127.0.0.1\n  port: {http_port}\n  webhook_secret: {SECRET}\n"
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return path, load_config(path)


def _install(client: MlflowClient, config, url: str) -> tuple[str, bool, int]:
    """Install the webhook with the config's secret, as ``registry-watcher webhooks install`` does."""
    return hook_store.install(client, url, config.http.webhook_secret.get_secret_value(),
                              "registry-watcher: production alias events for " + config.watches[0].model_name)


def _delivery(model: str, alias: str = "production", version: str = "1", secret: str = SECRET,
              age: float = 0.0, delivery_id: str | None = None, sign: bool = True) -> tuple[bytes, dict[str, str]]:
    """A delivery built the way mlflow/webhooks/delivery.py builds it."""
    body = json.dumps({"entity": "model_version_alias", "action": "created",
                       "timestamp": "2026-01-01T00:00:00+00:00",
                       "data": {"name": model, "alias": alias, "version": version}}).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time() - age))
    headers = {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": stamp}
    if sign:
        headers["X-MLflow-Signature"] = webhooks.sign(secret, delivery_id, stamp, body)
    return body, headers


def test_signature_is_mlflows_own():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": {"name": "m"}})
    assert webhooks.sign("s3cret", "id-1", "1700000000", body.encode()) == \
        _generate_hmac_signature("s3cret", "id-1", "1700000000", body)


def test_forged_unsigned_stale_and_replayed_deliveries_change_nothing(tmp_path: Path):
    _, config = _config(tmp_path, "http://127.0.0.1:9", "m_hooks")
    ticks: list[str] = []
    live = LiveClient(build_app(Health.for_config(config), config.http, webhooks.Receiver(config, ticks.append)))
    try:
        with captured() as logs:
            cases = {
                "forged": _delivery("m_hooks", secret="not-the-secret"),
                "unsigned": _delivery("m_hooks", sign=False),
                "stale": _delivery("m_hooks", age=301),
                "future": _delivery("m_hooks", age=-400),
            }
            answers = {name: live.post("/webhooks/mlflow", body, headers).status_code
                       for name, (body, headers) in cases.items()}
            body, headers = _delivery("m_hooks")
            tampered = live.post("/webhooks/mlflow", body.replace(b'"1"', b'"2"'), headers).status_code
            assert ticks == []
            valid = live.post("/webhooks/mlflow", body, headers)
            replay = live.post("/webhooks/mlflow", body, headers)
            other_model = live.post("/webhooks/mlflow", *_delivery("someone_elses_model")).status_code
            staging = live.post("/webhooks/mlflow", *_delivery("m_hooks", alias="staging")).status_code
            try:
                huge = live.post("/webhooks/mlflow", b"x" * (config.http.max_body_bytes + 1), headers).status_code
            except (urllib.error.URLError, ConnectionError) as exc:  # 413 sent and the connection closed
                cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc  # before the whole body
                assert isinstance(cause, (BrokenPipeError, ConnectionResetError)), exc  # was sent: a refusal too
                huge = 413
    finally:
        live.close()
    assert answers == {"forged": 401, "unsigned": 401, "stale": 400, "future": 400}
    assert tampered == 401 and huge == 413
    assert valid.status_code == 200 and valid.json()["tick_requested"] is True
    assert replay.status_code == 200 and replay.json()["detail"] == "duplicate delivery"
    assert other_model == 200 and staging == 200
    assert ticks == ["webhook:model_version_alias.created"]  # exactly one, from the valid delivery
    refused = [e for e in logs if e["event"] == "webhook_refused"]
    assert len(refused) == 5 and all(e["log_level"] == "warning" for e in refused)
    assert SECRET not in repr(logs)


@pytest.mark.integration
def test_install_is_idempotent_and_never_prints_the_secret(hook_server: str, tmp_path: Path):
    path, config = _config(tmp_path, hook_server, "m_install")
    client = MlflowClient(hook_server, hook_server)
    url = f"http://127.0.0.1:{free_port()}/webhooks/mlflow"
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    proc = subprocess.run([sys.executable, "-m", "watcher", "webhooks", "install", "--url", url,
                           "--config", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "created" in proc.stdout and SECRET not in proc.stdout + proc.stderr
    with captured() as logs:
        assert _install(client, config, url)[1] is False  # the second install updates
    assert SECRET not in repr(logs)
    mine = [hook for hook in client.list_webhooks() if hook.url == url]
    try:
        assert len(mine) == 1
        assert sorted(str(e) for e in mine[0].events) == sorted(hook_store.EVENTS)
        assert str(mine[0].status) in {"ACTIVE", "WebhookStatus.ACTIVE"}
        # a second one with the same URL (made by hand) is folded into ours by the next install
        client.create_webhook("dup", url, ["model_version_alias.created"], secret="x")
        assert _install(client, config, url)[1] is False
        assert len([hook for hook in client.list_webhooks() if hook.url == url]) == 1
    finally:
        for hook in client.list_webhooks():
            if hook.url == url:
                client.delete_webhook(hook.webhook_id)


@pytest.mark.integration
def test_real_delivery_scores_at_once_and_refusals_score_nothing(hook_server: str, tmp_path: Path):
    model, http_port = f"m_live_{uuid.uuid4().hex[:6]}", free_port()
    path, config = _config(tmp_path, hook_server, model, http_port=http_port, poll=60, scoring=True)
    client = MlflowClient(hook_server, hook_server)
    mlflow.set_tracking_uri(hook_server)
    url = f"http://127.0.0.1:{http_port}/webhooks/mlflow"
    hook_id, _, _ = _install(client, config, url)  # before any alias event, so no cached empty list
    train(config.watches[0].experiment)
    daemon = Daemon(path)
    try:
        daemon.wait_for("poll_completed", timeout=120, where=lambda e: e["registered"] == 1)
        wait_status(f"http://127.0.0.1:{http_port}/readyz", 200, timeout=30)
        # refused deliveries for the watched model's production alias: nothing happens
        for body, headers in (_delivery(model, secret="forged"), _delivery(model, sign=False),
                              _delivery(model, age=600)):
            assert post(url, body, headers)[0] in (400, 401)
        mark = len(daemon.events)
        promoted = time.monotonic()  # the alias is set first thing in promote()
        promote(client, config.watches[0], None, "webhook test", "alice")
        started = daemon.wait_for("scoring_started", timeout=20, start=mark)
        took = time.monotonic() - promoted
        print(f"promote -> scoring_started via the webhook: {took:.2f} s")
        assert took < 20
        received = daemon.wait_for("webhook_tick", timeout=1, start=mark,  # verified deliveries are debug;
                                   where=lambda e: e["deliveries"] >= 1)  # one info line per tick they asked for
        assert daemon.events.index(received) < daemon.events.index(started)
        daemon.wait_for("scoring_completed", timeout=120, start=mark)
        assert len(daemon.named("webhook_refused")) == 3
        assert not [e for e in daemon.events[:mark] if e["event"].startswith("scoring")]
    finally:
        assert daemon.stop() == 0
        client.delete_webhook(hook_id)
    assert SECRET not in "".join(daemon.raw)
    assert daemon.named("http_listening")[0]["webhooks"] is True and not daemon.named("not_json")
    # the poll, the backstop, finds it scored: once per change whichever comes first
    assert reconcile_once(client, config).watches[0].scored == []
    experiment = client.get_experiment_by_name(config.watches[0].scoring_experiment)
    assert len(client.search_runs([experiment.experiment_id], "")) == 1
