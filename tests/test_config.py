"""Config validation: the issue's file loads as written; bad files name the field's location."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import issue_yaml

from watcher.cli import main
from watcher.config import ChampionGate, ConfigError, CustomGate, FeaturesGate, MetricGate, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return path


def test_issue_config_loads_as_written(tmp_path):
    config = load_config(_write(tmp_path, issue_yaml("http://127.0.0.1:5000", "quickbite_churn", "customer_churn_model")))
    watch = config.watches[0]
    assert config.tracking_uri == "http://127.0.0.1:5000" and config.poll_interval_seconds == 10
    assert [type(g) for g in watch.gates] == [MetricGate, MetricGate, FeaturesGate, ChampionGate]
    assert watch.gates[0].min == 0.2 and len(watch.gates[2].features) == 8
    assert watch.tags == {"deployment_mode": "batch_inference_only", "known_limitation": "extreme_class_imbalance"}
    assert (watch.staging_alias, watch.production_alias, watch.artifact_path) == ("staging", "production", "model")


def test_no_tracking_uri_is_an_error_not_a_local_store(tmp_path, monkeypatch):
    """Issue 26 item 6: no default ``sqlite:///mlflow.db``; ``$MLFLOW_TRACKING_URI`` still counts."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WATCHER_TRACKING_URI", raising=False)
    text = issue_yaml("x", "e", "m").replace("tracking_uri: x\n", "")
    with pytest.raises(ConfigError, match="tracking_uri: not set"):
        load_config(_write(tmp_path, text))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert load_config(_write(tmp_path, text)).tracking_uri == "http://example.invalid:5000"
    local = "tracking_uri: sqlite:///mlflow.db\n" + text  # a local store, written on purpose, beside the file
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert load_config(_write(tmp_path, local)).tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_scoring_paths_resolve_against_the_config_folder(tmp_path):
    text = issue_yaml("http://h", "e", "m", extra_watch="    scoring:\n      input: data/*.csv\n")
    scoring = load_config(_write(tmp_path, text)).watches[0].scoring
    assert scoring.input == str(tmp_path.resolve() / "data/*.csv")
    assert scoring.output_dir == str(tmp_path.resolve() / "predictions")
    assert load_config(_write(tmp_path, text)).watches[0].scoring_experiment == "e-scoring"


@pytest.mark.parametrize("old, new, location", [
    ("poll_interval_seconds: 10", "poll_interval_seconds: -1", "poll_interval_seconds"),
    ("        min: 0.2", "        min: high", "watches.0.gates.0.metric.min"),
    ("      - champion: recall", "      - best_of: recall", "watches.0.gates.3"),
    ("    model_name: m\n", "", "watches.0.model_name"),
    ("    staging_alias: staging", "    stagin_alias: staging", "watches.0.stagin_alias"),
])
def test_bad_config_names_the_field(tmp_path, old, new, location):
    text = issue_yaml("http://h", "e", "m")
    assert old in text
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text.replace(old, new)))
    assert location in str(err.value)


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_custom_gate_must_import(tmp_path):
    text = issue_yaml("http://h", "e", "m", gates="      - handler: no_such_module:gate\n")
    with pytest.raises(ConfigError, match="watches.0.gates.4.handler.*cannot import"):
        load_config(_write(tmp_path, text))
    ok = issue_yaml("http://h", "e", "m", gates="      - handler: gates_for_tests:needs_param\n        param: lr\n")
    gate = load_config(_write(tmp_path, ok)).watches[0].gates[4]
    assert isinstance(gate, CustomGate) and gate.kwargs == {"param": "lr"}


def test_scoring_experiment_may_not_be_watched(tmp_path):
    text = issue_yaml("http://h", "e", "m", extra_watch="    scoring:\n      input: x.csv\n      experiment: e\n")
    with pytest.raises(ConfigError, match="scoring runs would become candidates"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("verb", ["check-config", "run", "once"])
def test_cli_exits_non_zero_on_a_bad_file_before_starting(tmp_path, verb, monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after main() wraps them
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    path = _write(tmp_path, issue_yaml("http://h", "e", "m").replace("poll_interval_seconds: 10", "poll_interval_seconds: -5"))
    invalid = 1 if verb == "check-config" else 2  # check-config exits 1 on any error (issue 26 item 6)
    assert main([verb, "--config", str(path)]) == invalid
    assert main([verb, "--config", str(tmp_path / "missing.yaml")]) == invalid


PORT_FILE = """\
tracking_uri: http://file.example:5000
watches:
  - experiment: e
    model_name: m
http:
  host: 127.0.0.1
  port: 9000
  liveness_seconds: 45
"""


def test_environment_overrides_the_file_the_dockerfile_case(tmp_path, monkeypatch):
    """The image sets WATCHER_HTTP__PORT=8080 and probes it; a port in the file must not win."""
    monkeypatch.setenv("WATCHER_HTTP__PORT", "8080")
    config = load_config(_write(tmp_path, PORT_FILE))
    assert config.http is not None and config.http.port == 8080
    assert config.http.host == "127.0.0.1" and config.http.liveness_seconds == 45  # the rest of the block stays


@pytest.mark.parametrize(("watcher_env", "mlflow_env", "in_file", "expected"), [
    ("http://watcher-env:1", "http://mlflow-env:2", True, "http://watcher-env:1"),
    ("http://watcher-env:1", None, True, "http://watcher-env:1"),  # the bug: it needed MLFLOW_TRACKING_URI too
    ("http://watcher-env:1", None, False, "http://watcher-env:1"),
    (None, "http://mlflow-env:2", True, "http://mlflow-env:2"),
    (None, None, True, "http://file.example:5000"),
])
def test_tracking_uri_precedence(tmp_path, monkeypatch, watcher_env, mlflow_env, in_file, expected):
    for name, value in (("WATCHER_TRACKING_URI", watcher_env), ("MLFLOW_TRACKING_URI", mlflow_env)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    text = PORT_FILE if in_file else PORT_FILE.replace("tracking_uri: http://file.example:5000\n", "")
    assert load_config(_write(tmp_path, text)).tracking_uri == expected


def test_no_embedded_default(tmp_path, monkeypatch):
    monkeypatch.delenv("WATCHER_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = PORT_FILE.replace("tracking_uri: http://file.example:5000\n", "")
    with pytest.raises(ConfigError, match="tracking_uri: not set"):
        load_config(_write(tmp_path, text))


def test_check_config_states_the_precedence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WATCHER_HTTP__PORT", "8080")
    path = tmp_path / "watcher.yaml"
    path.write_text(f"tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\nwatches:\n  - experiment: e\n    model_name: m\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "environment variables (nested with __), then $MLFLOW_TRACKING_URI" in out and "http.port" in out
