"""The production topology, natively: ``mlflow server`` on PostgreSQL with artifacts in S3 (moto's
server mode on loopback), the watcher daemon with ``http`` and the webhook on, and the seed's flow
through it: train, gate, register, staging, promote (CLI), scoring (fired by a real webhook delivery),
then ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest import PG, _drop_database, issue_yaml, postgres_database_or_skip
from daemon_proc import TESTS, Daemon, get, metric_value
from helpers import train
from mlflow import MlflowClient

from demo.churn import customer_data
from watcher.config import load_config
from watcher.store import webhooks
from watcher.testing import free_port, start_mlflow_server, stop

pytestmark = [pytest.mark.topology, pytest.mark.integration]
BUCKET = "mlflow-artifacts"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port, with the artifacts bucket created."""
    import boto3

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while get(f"{endpoint}/moto-api/")[0] == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "moto server did not start"
        time.sleep(0.3)
    boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in AWS.items()
                                                  if k != "AWS_DEFAULT_REGION"},
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def pg_s3_server(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server --backend-store-uri postgresql://... --artifacts-destination s3://...``."""
    database = postgres_database_or_skip()
    workdir = tmp_path_factory.mktemp("mlflow-topology")
    env = {**AWS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
           "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}
    proc, uri = start_mlflow_server(f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}", workdir,
                                    env=env, artifacts_destination=f"s3://{BUCKET}/artifacts")
    yield uri
    stop(proc)
    _drop_database(database)


def test_seed_flow_through_postgres_s3_and_webhooks(pg_s3_server: str, s3_endpoint: str, tmp_path: Path):
    import boto3

    uri, http_port = pg_s3_server, free_port()
    model, experiment = f"customer_churn_model_{uuid.uuid4().hex[:6]}", f"quickbite_churn_{uuid.uuid4().hex[:6]}"
    secret = uuid.uuid4().hex
    (tmp_path / "data").mkdir()
    customer_data(rows=500, seed=5, label=False).to_csv(tmp_path / "data" / "score.csv", index=False)
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml(uri, experiment, model).replace("poll_interval_seconds: 10", "poll_interval_seconds: 60")
                    + "    scoring:\n      input: data/score.csv\n      experiment: quickbite_scoring_topology\n"
                    + f"http: {{host: 127.0.0.1, port: {http_port}}}\n")
    env = {"WATCHER_HTTP__WEBHOOK_SECRET": secret}  # the secret from the environment, as in a container
    os.environ.update(env)
    try:
        config = load_config(path)
    finally:
        os.environ.pop("WATCHER_HTTP__WEBHOOK_SECRET")
    client = MlflowClient(uri, uri)
    base = f"http://127.0.0.1:{http_port}"
    hook_id, _, _ = webhooks.install(client, f"{base}/webhooks/mlflow", config.http.webhook_secret.get_secret_value(),
                                     f"registry-watcher: production alias events for {model}")

    mlflow.set_tracking_uri(uri)
    good = train(experiment)
    train(experiment, "shuffled", seed=3)  # recall far below the gate: rejected
    daemon = Daemon(path, env=env)
    try:
        done = daemon.wait_for("poll_completed", timeout=180, where=lambda e: e["registered"] + e["rejected"] == 2)
        assert (done["registered"], done["rejected"]) == (1, 1)
        version = client.search_model_versions(f"name='{model}'")[0]
        assert version.run_id == good and str(client.get_registered_model(model).aliases["staging"]) == version.version
        assert get(f"{base}/readyz")[0] == 200 and get(f"{base}/healthz")[0] == 200

        mark = len(daemon.events)
        cli = subprocess.run([sys.executable, "-m", "watcher", "promote", "--model", model, "--reason", "topology",
                              "--config", str(path)], capture_output=True, text=True, timeout=180,
                             env={**os.environ, **env, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"})
        assert cli.returncode == 0, cli.stderr
        promoted = time.monotonic()
        daemon.wait_for("webhook_tick", timeout=30, start=mark,  # deliveries are debug; one info line per tick
                        where=lambda e: e["deliveries"] >= 1)
        daemon.wait_for("scoring_started", timeout=max(1.0, 30 - (time.monotonic() - promoted)), start=mark)
        completed = daemon.wait_for("scoring_completed", timeout=180, start=mark)
        assert completed["scored_rows"] == 500
        daemon.wait_for("poll_completed", timeout=60, start=mark)  # the tick is counted once it ends

        status, text = get(f"{base}/metrics")
        assert status == 200
        assert metric_value(text, "registry_watcher_decisions_total", model=model, decision="registered") == 1
        assert metric_value(text, "registry_watcher_decisions_total", model=model, decision="rejected") == 1
        assert metric_value(text, "registry_watcher_scorings_total", model=model, outcome="ok") == 1
        assert metric_value(text, "registry_watcher_leader", model=model) == 1
        assert metric_value(text, "registry_watcher_run_to_staging_seconds_count") == 1
        assert metric_value(text, "registry_watcher_polls_total", outcome="ok") >= 2  # start-up + webhook tick
    finally:
        assert daemon.stop() == 0
        client.delete_webhook(hook_id)
    assert secret not in "".join(daemon.raw)
    assert not daemon.named("not_json")  # uvicorn's own lines go through the JSON pipeline too
    # the model and the predictions live in S3, not on this disk
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    assert any(k.endswith("MLmodel") for k in keys)
    assert any("predictions-" in k and k.endswith(".parquet") for k in keys)
