"""Secrets stay out of the logs (DEBUG included) and out of the CLI's output, server up or down."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from watcher.obs.logs import configure_logging
from watcher.obs.redact import redact
from watcher.testing import free_port

TESTS = Path(__file__).parent
SECRETS = {"MLFLOW_TRACKING_TOKEN": "tok-9f8e7d6c5b4a", "MLFLOW_TRACKING_PASSWORD": "pw-tracking-4242",
           "WATCHER_HTTP__WEBHOOK_SECRET": "hook-secret-7777"}
URI_PASSWORD = "uri-Pa55word"
LOCK_PASSWORD = "lock-Pa55word"


def test_redact_hides_url_passwords_anywhere_in_text():
    text = ("API request to http://alice:s3cr3t!x@mlflow.internal:5000/api/2.0/mlflow/runs/search failed "
            "(also postgresql://bob:hunter22@db:5432/x)")
    out = redact(text)
    assert "s3cr3t!x" not in out and "hunter22" not in out
    assert "http://alice:***@mlflow.internal:5000/api" in out and "postgresql://bob:***@db" in out
    assert redact("http://host:5000/path and user@example.com") == "http://host:5000/path and user@example.com"


def test_log_lines_never_carry_secrets_debug_and_tracebacks_included(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    log = structlog.get_logger("test")  # the pipeline redacts any event (get_logger emits only catalogued ones)
    url = f"http://alice:{URI_PASSWORD}@127.0.0.1:1/api/2.0/mlflow/runs/search"
    log.debug("some_event", error=f"request to {url} failed", nested={"list": [f"token {SECRETS['MLFLOW_TRACKING_TOKEN']}"]})
    try:
        raise RuntimeError(f"boom at {url} with {SECRETS['MLFLOW_TRACKING_PASSWORD']}")
    except RuntimeError:
        log.exception("with_traceback")
    logging.getLogger("mlflow.foreign").debug("foreign %s %s", url, SECRETS["WATCHER_HTTP__WEBHOOK_SECRET"])
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["event"] for line in lines][:2] == ["some_event", "with_traceback"]
    assert "RuntimeError" in lines[1]["exception"] and "alice:***@127.0.0.1" in lines[1]["exception"]
    assert URI_PASSWORD not in out
    for value in SECRETS.values():
        assert value not in out
    configure_logging("INFO", "json")


def _cli(verb: str, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "watcher", verb, "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=180)


def test_cli_and_daemon_output_is_redacted_when_the_server_is_down(tmp_path):
    port = free_port()
    base = f"""\
tracking_uri: http://alice:{URI_PASSWORD}@127.0.0.1:{port}
poll_interval_seconds: 1
log: {{level: DEBUG}}
watches:
  - experiment: e
    model_name: m
"""
    config, ha_config = tmp_path / "watcher.yaml", tmp_path / "ha.yaml"
    config.write_text(base)
    ha_config.write_text(base + f'ha: {{lock_url: "postgresql://postgres:{LOCK_PASSWORD}@127.0.0.1:{free_port()}/test"}}\n')
    env = {**os.environ, **SECRETS, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # it would override the file's URI (and its password)
    outputs = {verb: _cli(verb, config, env) for verb in ("once", "check-config", "status")}
    assert {verb: p.returncode for verb, p in outputs.items()} == {"once": 1, "check-config": 1, "status": 1}
    once = [json.loads(line) for line in outputs["once"].stdout.splitlines()]
    assert "tracking_server_unreachable" in {line["event"] for line in once}
    outputs["ha"] = _cli("check-config", ha_config, env)  # the lock database is down too: named, never leaked
    assert {"tracking_server_unreachable", "lock_database_unreachable"} <= {
        json.loads(line)["event"] for line in outputs["ha"].stdout.splitlines()}
    outputs["ha_once"] = _cli("once", ha_config, env)
    assert outputs["ha_once"].returncode == 1
    everything = "".join(p.stdout + p.stderr for p in outputs.values())
    assert "127.0.0.1" in everything and "alice" in everything  # the URLs are there, only the passwords not
    for secret in (URI_PASSWORD, LOCK_PASSWORD, *SECRETS.values()):
        assert secret not in everything, secret


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_status_output_is_redacted_with_a_live_server(tracking_uri, tmp_path):
    config = tmp_path / "watcher.yaml"
    host = tracking_uri.removeprefix("http://")
    config.write_text(f"tracking_uri: http://alice:{URI_PASSWORD}@{host}\nwatches:\n  - experiment: e\n    model_name: m\n")
    env = {**os.environ, **SECRETS, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # it would override the file's URI (and its password)
    for verb in ("status", "check-config"):
        proc = _cli(verb, config, env)
        assert proc.returncode == 0, proc.stderr
        for secret in (URI_PASSWORD, *SECRETS.values()):
            assert secret not in proc.stdout + proc.stderr
