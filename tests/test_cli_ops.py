"""Fail loudly and remove what you installed (issue 18, points 3, 5 and 6):

* ``check-config`` reaches the ``ha`` lock database and checks a local scoring input; exit 1 naming which;
* ``once`` exits 1 when the lock database was unreachable, 0 with ``standby: another replica leads M``;
* the docs' Fernet recipe (docs/deployment/compose.md), run as written, starts a real ``mlflow server`` (with webhooks), and
  ``webhooks list`` / ``webhooks uninstall --url`` work against it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import in_process, issue_yaml
from mlflow import MlflowClient

from watcher.cli import main
from watcher.service.leader import lock_key
from watcher.store import webhooks as hook_store
from watcher.testing import free_port, start_mlflow_server, stop

ROOT = Path(__file__).resolve().parent.parent
LOCK_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "whsec-cli-" + uuid.uuid4().hex


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return str(path)


def _pg_or_skip() -> None:
    try:
        psycopg.connect(LOCK_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}")


@in_process
def test_check_config_names_an_unreachable_lock_database_and_a_missing_input(tracking_uri, client, tmp_path,
                                                                             capsys):
    _pg_or_skip()
    model = f"m_check_{uuid.uuid4().hex[:6]}"
    base = issue_yaml(tracking_uri, f"exp_{model}", model)
    (tmp_path / "in.csv").write_text("a\n1\n")
    good = base + "    scoring:\n      input: in.csv\n" + f"ha:\n  lock_url: {LOCK_URL}\n"
    assert main(["check-config", "--config", _write(tmp_path, good)]) == 0
    capsys.readouterr()
    dead_lock = f"ha:\n  lock_url: postgresql://postgres@127.0.0.1:{free_port()}/test\n  connect_timeout_seconds: 1\n"
    assert main(["check-config", "--config", _write(tmp_path, base + dead_lock)]) == 1
    out = capsys.readouterr()
    assert "lock_database_unreachable" in out.out and "error: ha lock database unreachable" in out.err  # JSON; a line
    missing = base + "    scoring:\n      input: data/nowhere.csv\n"
    assert main(["check-config", "--config", _write(tmp_path, missing)]) == 1
    out = capsys.readouterr()
    assert f"scoring input of {model} does not exist" in out.err and "scoring_input_missing" in out.out
    glob_none = base + "    scoring:\n      input: data/*.parquet\n"
    assert main(["check-config", "--config", _write(tmp_path, glob_none)]) == 1
    remote = base + "    scoring:\n      input: s3://bucket/in.parquet\n"  # a URI is not checked here
    assert main(["check-config", "--config", _write(tmp_path, remote)]) == 0


@in_process
def test_once_fails_without_the_lock_database_and_says_standby_otherwise(tracking_uri, client, tmp_path, capsys):
    _pg_or_skip()
    model = f"m_once_{uuid.uuid4().hex[:6]}"
    base = issue_yaml(tracking_uri, f"exp_{model}", model)
    dead_lock = f"ha:\n  lock_url: postgresql://postgres@127.0.0.1:{free_port()}/test\n  connect_timeout_seconds: 1\n"
    assert main(["once", "--config", _write(tmp_path, base + dead_lock)]) == 1
    out = capsys.readouterr()
    assert "error: the ha lock database is unreachable: acted on nothing" in out.err and "standby:" not in out.out
    with psycopg.connect(LOCK_URL, autocommit=True) as other:  # another replica leads the model
        other.execute("SELECT pg_advisory_lock(%s)", (lock_key(model),))
        assert main(["once", "--config", _write(tmp_path, base + f"ha:\n  lock_url: {LOCK_URL}\n")]) == 0
    assert f"standby: another replica leads {model}" in capsys.readouterr().out
    assert main(["once", "--config", _write(tmp_path, base + f"ha:\n  lock_url: {LOCK_URL}\n")]) == 0
    assert "standby:" not in capsys.readouterr().out  # it leads now


def _readme_fernet_command() -> list[str]:
    """The key recipe exactly as the docs give it (so the test breaks when the docs drift)."""
    readme = (ROOT / "docs" / "deployment" / "compose.md").read_text()
    found = re.findall(r"^export MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=\$\((python -c '[^']*')\)$", readme, re.M)
    assert found, "docs/deployment/compose.md no longer shows how to make MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    assert all(f"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=$({cmd})" in compose for cmd in found)
    assert "token_urlsafe" not in found[0]
    argv = shlex.split(found[0])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.fixture(scope="module")
def fernet_server(tmp_path_factory: pytest.TempPathFactory):
    """``mlflow server`` (SQLite, 2 workers' worth of key sharing) with the docs recipe's key."""
    key = subprocess.run(_readme_fernet_command(), capture_output=True, text=True, check=True).stdout.strip()
    workdir = tmp_path_factory.mktemp("mlflow-fernet")
    env = {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key, "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
           "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}
    proc, uri = start_mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir, env=env)
    yield uri
    stop(proc)


@pytest.mark.integration
def test_readme_fernet_recipe_starts_mlflow_and_webhooks_list_and_uninstall(fernet_server, tmp_path, capsys):
    model = f"m_hooks_{uuid.uuid4().hex[:6]}"
    config = _write(tmp_path, issue_yaml(fernet_server, f"exp_{model}", model)
                    + f"http:\n  port: 0\n  webhook_secret: {SECRET}\n")
    urls = [f"http://127.0.0.1:{free_port()}/webhooks/mlflow" for _ in range(2)]
    for url in urls:  # the secret is stored Fernet-encrypted with the recipe's key
        assert main(["webhooks", "install", "--url", url, "--config", config]) == 0
    capsys.readouterr()
    assert main(["webhooks", "list", "--config", config]) == 0
    text = capsys.readouterr().out
    assert all(url in text for url in urls) and "ACTIVE" in text and "model_version_alias.created" in text
    assert SECRET not in text
    assert main(["webhooks", "list", "--json", "--config", config]) == 0
    listed = {h["url"]: h for h in json.loads(capsys.readouterr().out)}
    assert listed[urls[0]]["status"] == "ACTIVE"
    assert listed[urls[0]]["events"] == ["model_version_alias.created", "model_version_alias.deleted"]
    assert main(["webhooks", "uninstall", "--url", urls[0], "--config", config]) == 0
    assert "deleted" in capsys.readouterr().out
    assert main(["webhooks", "uninstall", "--url", urls[0], "--config", config]) == 1
    assert f"no webhook points at {urls[0]}" in capsys.readouterr().err
    remaining = [h["url"] for h in hook_store.listing(MlflowClient(fernet_server, fernet_server))]
    assert urls[0] not in remaining and urls[1] in remaining


@in_process
def test_client_only_verbs_load_no_daemon_machinery(tracking_uri, client, tmp_path):
    """CLI start-up: ``status``, ``history`` and ``promote`` import neither the scheduler nor the HTTP
    server nor the scoring worker, and leave MLflow's process-wide URIs alone (bench/bench_cli.py times them)."""
    model = f"m_fast_{uuid.uuid4().hex[:6]}"
    config = _write(tmp_path, issue_yaml(tracking_uri, f"exp_{model}", model))
    client.create_registered_model(model)
    probe = f"""
import sys, mlflow
from watcher.cli import main
codes = [main(["status", "--config", {config!r}]), main(["history", "--model", {model!r}, "--config", {config!r}])]
heavy = sorted(m for m in ("apscheduler", "uvicorn", "watcher.service.daemon", "watcher.scoring.worker",
                           "watcher.service.http") if m in sys.modules)
print(codes, heavy, mlflow.get_tracking_uri() == {tracking_uri!r})
"""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "[0, 0] [] False", done.stdout + done.stderr
