"""Protected aliases, history at a point in time, and the skops allowlist, against a real mlflow
server (SQLite only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import captured, decision, events, staging, train, versions_of

from demo.churn import customer_data
from handlers.base import GateContext, ModelRef
from handlers.gates import evaluate
from watcher.cli import main
from watcher.config import SafeSerializationGate, WatchConfig
from watcher.engine import reconcile_once
from watcher.engine.promotion import production_history, promote
from watcher.store import codec
from watcher.store import keys as state

sqlite_only = pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)  # logic: in-process SQLite


@pytest.fixture()
def policy_config(make_config, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    customer_data(rows=300, seed=5, label=False).to_csv(data / "scoring.csv", index=False)

    def build(lines: str = "", gates: str = ""):
        return make_config(gates=gates, extra_watch=lines + (
            "    scoring:\n      input: data/scoring.csv\n"
            f"      experiment: policy_scoring_{tmp_path.name[-12:].replace('-', '_')}\n"))

    return build


def _scoring_versions(client, config) -> list[str]:
    experiment = client.get_experiment_by_name(config.watches[0].scoring_experiment)
    runs = [] if experiment is None else client.search_runs([experiment.experiment_id], "")
    return sorted(r.data.tags["model_version"] for r in runs)


def _alias(client, model: str, alias: str = "production") -> str | None:
    value = (client.get_registered_model(model).aliases or {}).get(alias)
    return None if value is None else str(value)


@pytest.mark.integration
@sqlite_only
@pytest.mark.parametrize("policy", ["record", "alert", "revert"])
def test_a_hand_move_of_production_under_each_policy(client, policy_config, names, policy):
    config = policy_config(f"    production_policy: {policy}\n")
    watch = config.watches[0]
    train(names["experiment"])
    train(names["experiment"], seed=11)
    reconcile_once(client, config)
    v1, v2 = sorted((str(v.version) for v in versions_of(client, names["model"])), key=int)
    promote(client, watch, v1, "release", "alice")
    assert reconcile_once(client, config).watches[0].scored == [v1]

    client.set_registered_model_alias(names["model"], "production", v2)  # by hand, in the UI or a script
    with captured() as logs:
        report = reconcile_once(client, config)
    history = [(e.version, e.by, e.action) for e in production_history(client, watch)]
    if policy == "revert":
        assert _alias(client, names["model"]) == v1 and report.watches[0].scored == []
        assert history == [(v1, "alice", "promote"), (v2, "external", "observed"), (v1, "watcher", "revert")]
        [moved] = events(logs, "protected_alias_moved")
        [reverted] = events(logs, "protected_alias_reverted")
        assert reverted["log_level"] == "error" and reverted["alias"] == "production"
        assert reverted["attempted_version"] == v2 and reverted["restored_version"] == v1
        assert _scoring_versions(client, config) == [v1]
    else:
        assert _alias(client, names["model"]) == v2 and report.watches[0].scored == [v2]
        assert history == [(v1, "alice", "promote"), (v2, "external", "observed")]
        assert _scoring_versions(client, config) == sorted([v1, v2])
        if policy == "alert":
            [moved] = events(logs, "protected_alias_moved")
        else:
            assert not events(logs, "protected_alias_moved") and events(logs, "production_alias_changed")
    if policy != "record":
        assert moved["log_level"] == "error" and moved["alias"] == "production" and moved["by"] == "external"
        assert moved["version"] == v2 and moved["previous_version"] == v1 and "moved_by" in moved
    # a second tick changes nothing, and the watcher's own moves are never taken for external ones
    reconcile_once(client, config)
    assert len(production_history(client, watch)) == len(history)
    target = v2 if policy == "revert" else v1
    promote(client, watch, target, "through the tool", "bob")
    with captured() as logs:
        reconcile_once(client, config)
    assert _alias(client, names["model"]) == target and not events(logs, "protected_alias_moved")
    assert production_history(client, watch)[-1].by == "bob"


@pytest.mark.integration
@sqlite_only
def test_revert_without_a_recorded_move_removes_and_protects_staging_too(client, make_config, names, tmp_path, capsys):
    config = make_config(extra_watch="    production_policy: revert\n    staging_policy: revert\n")
    train(names["experiment"])
    train(names["experiment"], seed=11)
    reconcile_once(client, config)
    v1, v2 = sorted((str(v.version) for v in versions_of(client, names["model"])), key=int)
    assert staging(client, names["model"]) == v2
    client.set_registered_model_alias(names["model"], "production", v1)  # nothing ever promoted
    client.set_registered_model_alias(names["model"], "staging", v1)     # staging moved back by hand
    with captured() as logs:
        reconcile_once(client, config)
    assert _alias(client, names["model"]) is None and staging(client, names["model"]) == v2
    assert {e["alias"] for e in events(logs, "protected_alias_reverted")} == {"production", "staging"}
    assert [(e.version, e.action) for e in production_history(client, config.watches[0])] == [
        (v1, "observed"), (None, "revert")]
    capsys.readouterr()
    assert main(["status", "--config", str(tmp_path / "watcher.yaml"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["production_policy"] == "revert" and row["staging_policy"] == "revert"


@pytest.mark.integration
@sqlite_only
def test_history_at_before_between_and_after_three_moves(client, make_config, names, tmp_path, capsys):
    make_config()
    client.create_registered_model(names["model"])
    old = [{"seq": 1, "version": "1", "previous": None, "at": "2026-11-01T09:00:00Z", "by": "alice",
            "action": "promote", "reason": "first release"},
           {"seq": 2, "version": "2", "previous": "1", "at": "2026-11-10T12:00:00Z", "by": "bob",
            "action": "promote", "reason": "better recall"},
           {"seq": 3, "version": "1", "previous": "2", "at": "2026-11-20T08:30:00Z", "by": "carol",
            "action": "rollback", "reason": "v2 misbehaves"}]
    client.set_registered_model_tag(names["model"], state.HISTORY, codec.dump({"entries": old}))

    def at(when: str) -> dict:
        capsys.readouterr()
        assert main(["history", "--config", str(tmp_path / "watcher.yaml"), "--model", names["model"],
                     "--at", when, "--json"]) == 0
        out = capsys.readouterr()
        assert out.out.startswith("{"), out.out[:500]
        return json.loads(out.out)

    before = at("2026-10-31T00:00:00Z")
    assert before["version"] is None and before["by"] is None
    between = at("2026-11-20T08:29:59Z")
    assert (between["version"], between["by"], between["action"], between["reason"], between["at"]) == (
        "2", "bob", "promote", "better recall", "2026-11-10T12:00:00Z")
    assert at("2026-11-10T12:00:00Z")["version"] == "2"  # the instant of a move counts as after it
    after = at("2026-11-20T10:00:00Z")
    assert (after["version"], after["by"], after["action"], after["reason"]) == ("1", "carol", "rollback", "v2 misbehaves")
    capsys.readouterr()
    assert main(["history", "--config", str(tmp_path / "watcher.yaml"), "--model", names["model"],
                 "--at", "2026-11-05T00:00:00Z"]) == 0
    assert "v1, put there by alice at 2026-11-01T09:00:00Z (promote): first release" in capsys.readouterr().out
    assert main(["history", "--config", str(tmp_path / "watcher.yaml"), "--model", names["model"], "--at", "soon"]) == 2


def test_skops_trusted_types_outside_the_allowlist_are_rejected_by_name():
    watch = WatchConfig(experiment="e", model_name="m")
    flavors = {"sklearn": {"serialization_format": "skops",
                           "skops_trusted_types": ["sklearn.tree._tree.Tree", "builtins.eval", "os.system"]}}
    ctx = GateContext(run=None, watch=watch, model=ModelRef("models:/m-1", "m-1", None, flavors=flavors))  # type: ignore[arg-type]
    result = evaluate(ctx, [SafeSerializationGate()])[1]
    assert not result.passed and "['builtins.eval', 'os.system']" in result.reason
    assert evaluate(ctx, [SafeSerializationGate(trusted_types=["sklearn.tree._tree.Tree", "builtins.eval",
                                                               "os.system"])])[1].passed


@pytest.mark.integration
@sqlite_only
def test_a_crafted_skops_model_is_rejected_and_never_loaded_by_scoring(client, policy_config, names):
    config = policy_config(gates="      - safe_serialization: true\n")
    crafted = train(names["experiment"], trusted_types=["sklearn.tree._tree.Tree", "builtins.eval"],
                    registered_model_name=names["model"])
    reconcile_once(client, config)
    tags = decision(client, crafted)
    assert tags[state.DECISION] == "rejected" and "builtins.eval" in tags[state.REASON]
    assert "sklearn.tree._tree.Tree" not in tags[state.REASON].split("allowlist:")[-1]
    [version] = versions_of(client, names["model"])
    # someone points production at it by hand: recorded, but the scorer refuses to load it
    client.set_registered_model_alias(names["model"], "production", version.version)
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.watches[0].scored == [] and _scoring_versions(client, config) == []
    [failed] = events(logs, "scoring_failed")
    assert "refused to load" in failed["error"] and "rejected" in failed["error"]
    # even a forced promote does not make the scorer load a model the safe_serialization gate refuses
    client.delete_registered_model_alias(names["model"], "production")
    reconcile_once(client, config)
    promote(client, config.watches[0], str(version.version), "forced for the test", "alice", force=True)
    with captured() as logs:
        reconcile_once(client, config, now=4_000_000_000.0)
    [failed] = events(logs, "scoring_failed")
    assert "safe_serialization" in failed["error"] and "builtins.eval" in failed["error"]
    assert _scoring_versions(client, config) == []
