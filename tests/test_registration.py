"""The core path against a real tracking server: finished runs -> gates -> version -> staging."""

from __future__ import annotations

import json

import pytest
from helpers import SimulatedCrash, captured, crash_at, decision, end_active_run, events, staging, train, versions_of

from watcher.engine import Session, reconcile_once
from watcher.store import keys as state

pytestmark = pytest.mark.integration


def test_good_run_becomes_one_tagged_staged_version(client, make_config, names):
    config = make_config()
    run_id = train(names["experiment"])
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.ok
    [version] = versions_of(client, names["model"])
    assert version.run_id == run_id
    assert version.tags["deployment_mode"] == "batch_inference_only"
    assert version.tags["known_limitation"] == "extreme_class_imbalance"
    verdicts = json.loads(version.tags[state.GATES])
    assert {v["gate"] for v in verdicts} >= {"model", "metric:recall", "metric:precision", "features", "champion:recall"}
    recall = next(v for v in verdicts if v["gate"] == "metric:recall")
    assert recall["threshold"] == {"min": 0.2} and recall["value"] > 0.2
    assert version.tags[state.SOURCE_RUN_ID] == run_id
    assert version.tags[state.EXPERIMENT] == names["experiment"]
    assert "recall" in json.loads(version.tags[state.METRICS])
    assert staging(client, names["model"]) == str(version.version)
    tags = decision(client, run_id)
    assert tags[state.DECISION] == "registered" and tags[state.MODEL_VERSION] == str(version.version)
    [line] = events(logs, "run_registered")
    assert line["run_id"] == run_id and line["version"] == str(version.version)
    assert line["model_name"] == names["model"] and line["experiment"] == names["experiment"]
    # an idle second tick changes nothing
    with captured() as logs:
        assert reconcile_once(client, config).ok
    assert not events(logs, "run_registered") and len(versions_of(client, names["model"])) == 1


@pytest.mark.parametrize("variant, expected", [
    ("shuffled", "metric:recall: recall="),
    ("no_recall", "metric:recall: recall missing"),
    ("no_model", "no model logged under artifact_path 'model'"),
    ("extra_feature", "extra columns ['customer_id_hash']"),
])
def test_bad_runs_are_rejected_with_reasons(client, make_config, names, variant, expected):
    config = make_config()
    run_id = train(names["experiment"], variant)
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.ok and report.watches[0].rejected[0][0] == run_id
    assert versions_of(client, names["model"]) == []
    tags = decision(client, run_id)
    assert tags[state.DECISION] == "rejected"
    assert expected in tags[state.REASON]
    [warning] = events(logs, "run_rejected")
    assert warning["log_level"] == "warning" and warning["run_id"] == run_id and expected in warning["reason"]


def test_running_run_waits_and_failed_run_never_registers(client, make_config, names):
    config = make_config()
    running = train(names["experiment"], end=False)
    assert reconcile_once(client, config).ok
    assert versions_of(client, names["model"]) == [] and state.DECISION not in decision(client, running)
    end_active_run()
    failed = train(names["experiment"], end=False)
    end_active_run("FAILED")
    reconcile_once(client, config)
    [version] = versions_of(client, names["model"])
    assert version.run_id == running
    assert versions_of(client, names["model"], failed) == []
    assert state.DECISION not in decision(client, failed)


def test_two_runs_in_one_poll_and_backlog_at_start(client, make_config, names):
    first, second = train(names["experiment"]), train(names["experiment"], seed=11)
    config = make_config()  # the watcher starts after both finished: the backlog
    report = reconcile_once(client, config)
    assert [r for r, _ in report.watches[0].registered] == [first, second]
    by_run = {v.run_id: v.version for v in versions_of(client, names["model"])}
    assert set(by_run) == {first, second}
    assert staging(client, names["model"]) == str(by_run[second])
    third = train(names["experiment"], seed=12)
    report = reconcile_once(client, config, session=Session())
    assert [r for r, _ in report.watches[0].registered] == [third]


def test_staging_never_moves_backwards_for_a_late_run(client, make_config, names):
    config = make_config()
    early = train(names["experiment"], end=False)
    end_active_run()
    late = train(names["experiment"], seed=11)
    # the early run's client clock lagged: it ended 1 s before the late one but is seen later
    client.set_terminated(early, end_time=client.get_run(late).info.end_time - 1000)
    client.set_tag(early, "hold", "1")
    reconcile_once(client, config)
    by_run = {v.run_id: str(v.version) for v in versions_of(client, names["model"])}
    assert staging(client, names["model"]) == by_run[late]


@pytest.mark.parametrize("point", ["after_create", "after_alias", "after_decision"])
def test_crash_points_are_repaired_exactly_once(client, make_config, names, point):
    config = make_config()
    run_id = train(names["experiment"])
    with pytest.raises(SimulatedCrash):
        reconcile_once(client, config, crash=crash_at(point))
    reconcile_once(client, config, session=Session())  # a restarted process
    reconcile_once(client, config, session=Session())
    [version] = versions_of(client, names["model"])
    assert version.tags["deployment_mode"] == "batch_inference_only"
    assert staging(client, names["model"]) == str(version.version)
    assert decision(client, run_id)[state.DECISION] == "registered"


def test_bare_version_is_repaired_not_duplicated(client, make_config, names):
    """A version exists for the run (a crash, or a hand registration) but its tags are missing."""
    config = make_config()
    run_id = train(names["experiment"])
    client.create_registered_model(names["model"])
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    bare = client.create_model_version(names["model"], f"models:/{model_id}", run_id=run_id, model_id=model_id)
    with pytest.raises(SimulatedCrash):
        reconcile_once(client, config, crash=crash_at("after_tag"))
    with captured() as logs:
        reconcile_once(client, config, session=Session())
    [version] = versions_of(client, names["model"])
    assert version.version == bare.version
    assert version.tags["known_limitation"] == "extreme_class_imbalance" and state.GATES in version.tags
    assert staging(client, names["model"]) == str(bare.version)
    assert not events(logs, "version_repaired")  # the first (crashed) tick already wrote the tags
    assert decision(client, run_id)[state.MODEL_VERSION] == str(bare.version)


def test_champion_gate_blocks_a_worse_challenger(client, make_config, names):
    config = make_config()
    champion = train(names["experiment"])
    reconcile_once(client, config)
    [v1] = versions_of(client, names["model"])
    client.set_registered_model_alias(names["model"], "production", v1.version)
    worse = train(names["experiment"], n_estimators=1, rows=200, seed=3)
    client.log_metric(worse, "recall", client.get_run(champion).data.metrics["recall"] - 0.05)
    reconcile_once(client, config)
    tags = decision(client, worse)
    assert tags[state.DECISION] == "rejected" and "champion:recall" in tags[state.REASON]
    assert f"champion v{v1.version}" in tags[state.REASON]


def test_missing_experiment_is_a_warning_and_polling_goes_on(client, make_config, names):
    config = make_config()
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.ok and events(logs, "experiment_missing")[0]["log_level"] == "warning"
    train(names["experiment"])
    assert reconcile_once(client, config, session=Session()).watches[0].registered
