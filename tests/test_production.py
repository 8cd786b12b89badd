"""Production alias -> scoring, promote, rollback and history, against a real tracking server."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from helpers import captured, events, train, versions_of

from demo.churn import customer_data
from watcher.engine import Session, reconcile_once
from watcher.engine.promotion import PromotionError, production_history, promote, rollback
from watcher.store import keys as state

pytestmark = pytest.mark.integration


@pytest.fixture()
def scoring_config(make_config, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    customer_data(rows=2500, seed=5, label=False).to_csv(data / "customer_data_scoring.csv", index=False)

    def build(**scoring: object):
        lines = "".join(f"      {k}: {v}\n" for k, v in scoring.items())
        return make_config(extra_watch=(
            "    scoring:\n"
            "      input: data/customer_data_scoring.csv\n"
            "      output_dir: predictions\n"
            "      experiment: quickbite_scoring_" + tmp_path.name[-12:].replace("-", "_") + "\n" + lines))

    return build


def _scoring_runs(client, config):
    experiment = client.get_experiment_by_name(config.watches[0].scoring_experiment)
    return [] if experiment is None else client.search_runs([experiment.experiment_id], "")


def _two_versions(client, config, names):
    train(names["experiment"])
    train(names["experiment"], seed=11)
    reconcile_once(client, config)
    return sorted(str(v.version) for v in versions_of(client, names["model"]))


def test_alias_move_fires_exactly_one_scoring_run_with_correct_predictions(client, scoring_config, names, tmp_path):
    config = scoring_config(chunk_rows=1000)
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    assert _scoring_runs(client, config) == []  # staging alone never scores
    promote(client, watch, None, "first release", "alice")
    with captured() as logs:
        report = reconcile_once(client, config, session=Session())
    assert report.ok and report.watches[0].scored == [v2]
    [run] = _scoring_runs(client, config)
    assert run.info.run_name == "model_pattern_scoring" and run.info.status == "FINISHED"
    assert run.data.metrics["scored_rows"] == 2500
    assert run.data.tags["model_name"] == names["model"] and run.data.tags["model_version"] == v2
    assert run.data.tags["model_alias"] == "production"
    assert any(a.path.startswith("predictions") for a in client.list_artifacts(run.info.run_id))
    [output] = list((tmp_path / "predictions" / names["model"] / f"v{v2}").glob("predictions-*.parquet"))
    written = pd.read_parquet(output)
    frame = pd.read_csv(tmp_path / "data" / "customer_data_scoring.csv")
    expected = mlflow.pyfunc.load_model(f"models:/{names['model']}/{v2}").predict(frame)
    assert list(written["prediction"]) == list(expected)
    assert list(written.columns) == [*frame.columns, "prediction"]
    assert events(logs, "scoring_completed")[0]["version"] == v2
    # a restart (fresh session, fresh process state) does not score again
    assert reconcile_once(client, config, session=Session()).watches[0].scored == []
    assert len(_scoring_runs(client, config)) == 1
    entries = production_history(client, watch)
    assert [(e.version, e.by, e.action, e.reason) for e in entries] == [(v2, "alice", "promote", "first release")]
    assert client.get_model_version(names["model"], v2).tags[state.PROMOTED_BY] == "alice"


def test_promote_then_rollback_each_score_once(client, scoring_config, names):
    config = scoring_config()
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    promote(client, watch, v1, "baseline", "alice")
    reconcile_once(client, config)
    promote(client, watch, None, "better recall", "bob")
    assert reconcile_once(client, config).watches[0].scored == [v2]
    entry = rollback(client, watch, None, "v2 misbehaves", "carol")
    assert entry.version == v1 and entry.previous == v2 and entry.action == "rollback"
    assert reconcile_once(client, config).watches[0].scored == [v1]  # back to an older version scores again
    assert reconcile_once(client, config).watches[0].scored == []
    runs = _scoring_runs(client, config)
    assert sorted(r.data.tags["model_version"] for r in runs) == sorted([v1, v2, v1])
    tags = client.get_model_version(names["model"], v1).tags
    assert tags[state.PROMOTION_ACTION] == "rollback" and tags[state.PROMOTION_REASON] == "v2 misbehaves"
    assert [e.version for e in production_history(client, watch)] == [v1, v2, v1]


def test_rollback_without_history_refuses(client, scoring_config, names):
    config = scoring_config()
    _two_versions(client, config, names)
    with pytest.raises(PromotionError, match="no previous production version"):
        rollback(client, config.watches[0], None, "", "alice")


def test_external_alias_move_is_recorded_and_scored(client, scoring_config, names):
    config = scoring_config()
    v1, _ = _two_versions(client, config, names)
    client.set_registered_model_alias(names["model"], "production", v1)
    with captured() as logs:
        assert reconcile_once(client, config).watches[0].scored == [v1]
    assert events(logs, "production_alias_changed")[0]["by"] == "external"
    client.delete_registered_model_alias(names["model"], "production")
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.watches[0].scored == [] and events(logs, "production_alias_removed")
    assert production_history(client, config.watches[0])[-1].version is None


def test_bad_scoring_input_is_an_error_and_registration_goes_on(client, scoring_config, names, tmp_path):
    config = scoring_config()
    v1, _ = _two_versions(client, config, names)
    path = tmp_path / "data" / "customer_data_scoring.csv"
    pd.read_csv(path).drop(columns=["complaints_90d"]).to_csv(path, index=False)
    promote(client, config.watches[0], v1, "", "alice")
    with captured() as logs:
        report = reconcile_once(client, config, now=1_000_000.0)
    [error] = events(logs, "scoring_failed")
    assert error["log_level"] == "error" and error["file"] == str(path) and error["columns"] == ["complaints_90d"]
    assert "complaints_90d" in error["error"]
    assert not report.ok and not report.poll_failed
    assert all(r.info.status != "FINISHED" for r in _scoring_runs(client, config))
    # backoff: the next poll does not retry at once, but registration goes on
    run_id = train(names["experiment"], seed=13)
    report = reconcile_once(client, config, now=1_000_001.0)
    assert report.watches[0].registered[0][0] == run_id and not events(logs, "scoring_started")[1:]
    assert len(_scoring_runs(client, config)) == 1
    # once the file is fixed and the backoff has passed, it scores
    customer_data(rows=300, seed=5, label=False).to_csv(path, index=False)
    report = reconcile_once(client, config, now=1_000_000.0 + 3600)
    assert report.ok and report.watches[0].scored == [v1]


def test_scoring_crash_after_run_is_adopted_not_repeated(client, scoring_config, names):
    config = scoring_config()
    v1, _ = _two_versions(client, config, names)
    promote(client, config.watches[0], v1, "", "alice")
    reconcile_once(client, config)
    # simulate a crash between the FINISHED scoring run and the watcher.scoring tag
    client.delete_registered_model_tag(names["model"], state.SCORED)
    with captured() as logs:
        reconcile_once(client, config, session=Session())
    assert events(logs, "scoring_adopted") and len(_scoring_runs(client, config)) == 1
