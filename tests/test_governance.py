"""Governance against a real mlflow server (SQLite only): versions the watcher did not create,
promote refusal and ``--force``, ``run_filter`` scopes, and ``explain``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import captured, decision, events, staging, train, versions_of

from watcher.cli import main
from watcher.config import ConfigError, load_config
from watcher.engine import reconcile_once
from watcher.engine.promotion import PromotionError, production_history, promote
from watcher.store import keys as state

sqlite_only = pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)  # logic: in-process SQLite


def _cli(capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([args[0], "--config", str(tmp_path / "watcher.yaml"), *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration
@sqlite_only
def test_self_registered_passing_run_is_gated_tagged_and_staged_without_a_second_version(client, make_config, names):
    config = make_config()
    run_id = train(names["experiment"], registered_model_name=names["model"])  # the seed's original argument
    [before] = versions_of(client, names["model"])
    assert state.DECISION not in before.tags
    reconcile_once(client, config)
    [version] = versions_of(client, names["model"])
    assert version.version == before.version
    assert version.tags[state.DECISION] == "registered" and version.tags[state.REASON]
    assert version.tags["deployment_mode"] == "batch_inference_only" and state.GATES in version.tags
    assert staging(client, names["model"]) == str(version.version)
    assert decision(client, run_id)[state.MODEL_VERSION] == str(version.version)


@pytest.mark.integration
@sqlite_only
def test_self_registered_rejected_run_is_tagged_never_staged_and_promote_refuses(
        client, make_config, names, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REGISTRY_WATCHER_USER", "alice")
    config = make_config()
    run_id = train(names["experiment"], "shuffled", registered_model_name=names["model"])
    reconcile_once(client, config)
    [version] = versions_of(client, names["model"])
    number = str(version.version)
    assert version.tags[state.DECISION] == "rejected"
    reason = version.tags[state.REASON]
    assert "metric:recall" in reason and reason == decision(client, run_id)[state.REASON]
    assert "deployment_mode" not in version.tags and staging(client, names["model"]) is None

    code, _, err = _cli(capsys, tmp_path, "promote", "--model", names["model"], "--version", number)
    assert code == 1 and "rejected" in err and reason in err
    assert (client.get_registered_model(names["model"]).aliases or {}).get("production") is None
    code, _, err = _cli(capsys, tmp_path, "promote", "--model", names["model"], "--version", number, "--force")
    assert code == 1 and "--reason" in err  # a forced move must say why

    code, out, _ = _cli(capsys, tmp_path, "promote", "--model", names["model"], "--version", number,
                        "--force", "--reason", "incident 42: the only model that loads")
    assert code == 0 and "FORCED" in out
    assert str(client.get_registered_model(names["model"]).aliases["production"]) == number
    code, out, _ = _cli(capsys, tmp_path, "history", "--model", names["model"], "--json")
    [entry] = json.loads(out)
    assert entry["forced"] is True and entry["by"] == "alice" and entry["reason"] == "incident 42: the only model that loads"
    assert client.get_model_version(names["model"], number).tags[state.PROMOTION_FORCED] == "true"


@pytest.mark.integration
@sqlite_only
def test_forced_move_is_a_warning_event_and_an_ungated_version_is_refused(client, make_config, names):
    config = make_config()
    watch = config.watches[0]
    # a version registered by hand from a run the watcher never gated (another experiment)
    other = train(names["experiment"] + "_elsewhere")
    client.create_registered_model(names["model"])
    model_id = client.get_run(other).outputs.model_outputs[0].model_id
    bare = client.create_model_version(names["model"], f"models:/{model_id}", run_id=other, model_id=model_id)
    with pytest.raises(PromotionError, match="no watcher decision.*rejected"):
        promote(client, watch, str(bare.version), "", "bob")
    with captured() as logs:
        entry = promote(client, watch, str(bare.version), "hotfix approved by CAB-7", "bob", force=True)
    [warning] = events(logs, "promotion_forced")
    assert warning["log_level"] == "warning" and warning["version"] == str(bare.version)
    assert warning["reason"] == "hotfix approved by CAB-7" and warning["decision"] == "none"
    assert entry.forced and production_history(client, watch)[-1].forced is True
    # the daemon does not take the forced move for an external one
    with captured() as logs:
        reconcile_once(client, config)
    assert not events(logs, "production_alias_changed")
    assert [e.by for e in production_history(client, watch)] == ["bob"]


@pytest.mark.integration
@sqlite_only
def test_run_filter_scopes_the_watch_and_explain_says_why(client, make_config, names, tmp_path, capsys):
    config = make_config(extra_watch="    run_filter: tags.candidate = 'true'\n")
    inside = train(names["experiment"], tags={"candidate": "true"})
    outside = train(names["experiment"], seed=11, registered_model_name=names["model"])
    report = reconcile_once(client, config)
    assert [r for r, _ in report.watches[0].registered] == [inside] and not report.watches[0].rejected
    assert decision(client, outside) == {}  # no watcher.* tag at all
    [theirs] = versions_of(client, names["model"], outside)
    assert not any(k.startswith("watcher.") for k in theirs.tags)
    assert len(versions_of(client, names["model"])) == 2  # the watcher made one, the run's own code the other
    code, out, _ = _cli(capsys, tmp_path, "explain", "--run", outside, "--json")
    assert code == 0 and json.loads(out)["note"].startswith("outside the watch's run_filter")


def test_invalid_run_filter_is_a_config_error_naming_the_field(tmp_path):
    path = tmp_path / "watcher.yaml"
    path.write_text("tracking_uri: http://127.0.0.1:1\nwatches:\n  - experiment: e\n    model_name: m\n"
                    "    run_filter: tags.candidate == true OR params.x = 'y'\n")
    with pytest.raises(ConfigError, match=r"watches\.0\.run_filter: .*not a valid MLflow search filter"):
        load_config(path)


@pytest.mark.integration
@sqlite_only
def test_explain_a_registered_promoted_run_and_a_rejected_one(client, make_config, names, tmp_path, capsys):
    config = make_config()
    good = train(names["experiment"])
    bad = train(names["experiment"], "extra_feature", seed=11)
    reconcile_once(client, config)
    [version] = versions_of(client, names["model"])
    promote(client, config.watches[0], None, "first release", "alice")

    code, out, _ = _cli(capsys, tmp_path, "explain", "--run", good, "--json")
    found = json.loads(out)
    assert code == 0 and found["decision"] == "registered" and found["experiment"] == names["experiment"]
    assert found["watch"]["model_name"] == names["model"] and found["watch"]["source"] == "run tag watcher.model_name"
    recall = next(g for g in found["gates"] if g["gate"] == "metric:recall")
    assert recall["passed"] and recall["threshold"] == {"min": 0.2} and recall["value"] > 0.2
    assert {g["gate"] for g in found["gates"]} >= {"model", "features", "champion:recall"}
    assert found["version"]["version"] == str(version.version)
    assert found["version"]["aliases"] == ["production", "staging"]
    [move] = found["version"]["production_moves"]
    assert move["by"] == "alice" and move["action"] == "promote" and move["reason"] == "first release"

    code, out, _ = _cli(capsys, tmp_path, "explain", "--run", bad)
    assert code == 0 and "decision: REJECTED" in out and "FAIL  features" in out and "customer_id_hash" in out
    assert "version: none" in out
    code, _, err = _cli(capsys, tmp_path, "explain", "--run", "0" * 32)
    assert code == 1 and "not found" in err
