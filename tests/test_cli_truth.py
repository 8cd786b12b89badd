"""Issue 26, item 6: commands that tell the truth.

* no ``tracking_uri`` anywhere: every verb says so in one ``error:`` line and no ``mlflow.db`` (or
  ``mlruns``) appears in the working folder;
* ``promote --version 999``: one ``error:`` line, exit 1 (not a JSON ``command_failed`` blob); with
  ``--json`` the error is JSON;
* ``check-config`` lists the watches it would make and refuse and exits 1 on a refusal;
* ``once`` exits 1 when a watch was refused or failed;
* ``status`` shows refused watches without a daemon (worked out here, saying failures need the
  daemon), and each watch's state, reason and holder from the daemon's ``GET /api/v1/watches``.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import issue_yaml
from helpers import train
from mlflow import MlflowClient

from watcher.cli import main

sqlite_only = pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def _streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon verbs wrap sys.stdout/sys.stderr (stray output into the log): put them back after."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return str(path)


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize(("argv", "code"), [(["status"], 2), (["once"], 2), (["check-config"], 1),
                                            (["history", "--model", "m"], 2), (["promote", "--model", "m"], 2)])
def test_no_tracking_uri_is_one_error_line_and_no_local_store(tmp_path, monkeypatch, capsys, argv, code):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WATCHER_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "watches:\n  - experiment: e\n    model_name: m\n")
    assert main([*argv, "--config", path]) == code
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(f"error: {path}: invalid config: tracking_uri: not set"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watcher.yaml"]  # no mlflow.db, no mlruns


def test_a_json_verb_says_its_error_in_json(tmp_path, capsys):
    path = _write(tmp_path, "tracking_uri: http://127.0.0.1:1\npoll_interval_seconds: -1\npage_size: 0\nwatches: []\n")
    assert main(["status", "--json", "--config", path]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    said = json.loads(out.err)
    assert said["error"].startswith(f"{path}: invalid config: poll_interval_seconds") and len(said["errors"]) == 2


@pytest.mark.integration
@sqlite_only
def test_promote_of_a_missing_version_is_one_error_line(tracking_uri, client: MlflowClient, tmp_path, capsys):
    model = f"m_truth_{uuid.uuid4().hex[:6]}"
    experiment = client.create_experiment(f"exp_{model}")
    run = client.create_run(experiment)
    client.create_registered_model(model)
    client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    path = _write(tmp_path, issue_yaml(tracking_uri, f"exp_{model}", model))
    capsys.readouterr()  # what the set-up logged (through an earlier test's handlers) is not the CLI's
    for extra in ([], ["--force", "--reason", "test"]):
        assert main(["promote", "--model", model, "--version", "999", *extra, "--config", path]) == 1
        out = capsys.readouterr()
        err = _errors(out.err)
        assert len(err) == 1 and err[0].startswith("error: ") and "999" in err[0], err
        assert "{" not in out.err and "command_failed" not in out.err and out.out == ""


def _discover_yaml(tracking_uri: str, tag: str, watches: str = "") -> str:
    return (f"tracking_uri: {tracking_uri}\ndiscover: {{tag: {tag}.model, profile_tag: {tag}.profile}}\n"
            f"profiles:\n  default:\n    gates: [{{metric: recall, min: 0.2}}]\n  strict:\n    extends: default\n"
            f"    gates: [{{metric: recall, min: 0.6}}]\nwatches: [{watches}]\n")


@pytest.fixture()
def tagged(client: MlflowClient) -> Iterator[dict[str, Any]]:
    """A tag of this test's own (the session server is shared): an owner, a second experiment tagged
    with the owner's model (refused: ownership) and one naming an unknown profile (refused: invalid)."""
    tag = f"rw-truth-{uuid.uuid4().hex[:8]}"
    model = f"m_{tag}"
    ids = {"owner": client.create_experiment(f"{tag}-owner", tags={f"{tag}.model": model}),
           "second": client.create_experiment(f"{tag}-second", tags={f"{tag}.model": model})}
    ids["typo"] = client.create_experiment(f"{tag}-typo", tags={f"{tag}.model": f"{model}_t", f"{tag}.profile": "strcit"})
    yield {"tag": tag, "model": model, "ids": ids}


def _untag(client: MlflowClient, tagged: dict[str, Any], *names: str) -> None:
    for name in names:
        client.delete_experiment_tag(tagged["ids"][name], f"{tagged['tag']}.model")


@pytest.mark.integration
@sqlite_only
def test_check_config_lists_what_it_would_watch_and_refuse(tracking_uri, client, tagged, tmp_path, capsys):
    tag = tagged["tag"]
    path = _write(tmp_path, _discover_yaml(tracking_uri, tag))
    assert main(["check-config", "--config", path]) == 1
    out = capsys.readouterr()
    err = _errors(out.err)
    assert any(f"would refuse experiment '{tag}-second' ({tagged['ids']['second']})" in e for e in err), err
    assert any(f"'{tag}-typo'" in e and "unknown profile 'strcit'" in e for e in err), err
    assert all(line.startswith("error: ") for line in err)
    events = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    ok = [e for e in events if e["event"] == "config_ok"]
    assert [(e["experiment"], e["source"]) for e in ok] == [(f"{tag}-owner", "discovered (experiment tag, profile default)")]
    assert {e["experiment"] for e in events if e["event"] == "config_refused"} == {f"{tag}-second", f"{tag}-typo"}
    _untag(client, tagged, "second", "typo")
    assert main(["check-config", "--config", path]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.integration
@sqlite_only
def test_once_exits_1_when_a_watch_is_refused(tracking_uri, client, tagged, tmp_path, capsys):
    tag = tagged["tag"]
    path = _write(tmp_path, _discover_yaml(tracking_uri, tag))
    assert main(["once", "--config", path]) == 1
    err = _errors(capsys.readouterr().err)
    assert sorted(e.split(" refused:")[0] for e in err) == [
        f"error: watch {tag}-second -> {tagged['model']}", f"error: watch {tag}-typo -> {tagged['model']}_t"], err
    _untag(client, tagged, "second", "typo")
    assert main(["once", "--config", path]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.integration
@sqlite_only
def test_once_exits_1_when_a_watch_fails(tracking_uri, client, tmp_path, capsys, monkeypatch):
    model = f"m_fail_{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    train(f"exp_{model}")
    mlflow.genai.register_prompt(name=model, template="Hello {{name}}")  # the model's name is a prompt's: no write
    path = _write(tmp_path, issue_yaml(tracking_uri, f"exp_{model}", model))
    capsys.readouterr()
    assert main(["once", "--config", path]) == 1
    err = _errors(capsys.readouterr().err)
    assert err and all(e.startswith(f"error: watch exp_{model} -> {model} failed: ") for e in err), err


class _Daemon(BaseHTTPRequestHandler):
    """A stand-in for the daemon's ``GET /api/v1/watches``."""

    body: dict[str, Any] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        data = json.dumps(self.body).encode() if self.path == "/api/v1/watches" else b"{}"
        self.send_response(200 if self.path == "/api/v1/watches" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.integration
@sqlite_only
def test_status_shows_failed_and_refused_watches_and_their_holders(tracking_uri, client, tagged, tmp_path, capsys,
                                                                   monkeypatch):
    tag, model = tagged["tag"], tagged["model"]
    path = _write(tmp_path, _discover_yaml(tracking_uri, tag))
    monkeypatch.setenv("REGISTRY_WATCHER_API_URL", "http://127.0.0.1:9")  # nobody answers: states worked out here
    assert main(["status", "--config", path, "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "states: refusals worked out here; failed watches and replicas need the daemon's API" in out
    assert f"{model}  (experiment {tag}-second; REFUSED: " in out and "unknown profile 'strcit'" in out
    assert f"{model}  (experiment {tag}-owner; discovered (experiment tag, profile default); state unknown" in out

    _Daemon.body = {"watches": [
        {"watch": f"{tag}-owner -> {model}", "model": model, "experiment": f"{tag}-owner", "experiment_id": "1",
         "state": "failed", "reason": "PERMISSION_DENIED on the experiment", "since": "2026-12-03T10:00:00Z",
         "held_by": "replica-b", "held_here": False},
        {"watch": f"{tag}-second -> {model}", "model": model, "experiment": f"{tag}-second", "experiment_id": "2",
         "state": "refused", "reason": f"'{model}' is fed by {tag}-owner", "since": None, "held_by": None}]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Daemon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("REGISTRY_WATCHER_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
        assert main(["status", "--config", path, "--last", "1"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("states: from the daemon at http://127.0.0.1:")
        assert "state failed; held by replica-b)" in out
        assert "FAILED since 2026-12-03T10:00:00Z: PERMISSION_DENIED on the experiment" in out
        assert f"(experiment {tag}-second; REFUSED: '{model}' is fed by {tag}-owner)" in out
        assert main(["status", "--json", "--config", path, "--last", "1"]) == 0
        rows = {r["experiment"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows[f"{tag}-owner"]["state"] == "failed" and rows[f"{tag}-owner"]["held_by"] == "replica-b"
        assert rows[f"{tag}-second"]["state"] == "refused"
    finally:
        server.shutdown()
        server.server_close()
