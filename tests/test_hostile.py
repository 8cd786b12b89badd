"""Hostile runs: each is rejected with a reason naming the cause, in the same poll as the others,
and a good run logged after them registers as usual."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import captured, decision, events, staging, train, versions_of
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from demo.churn import customer_data, requirements
from watcher.engine import reconcile_once
from watcher.store import keys as state

pytestmark = [pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)]  # logic: in-process SQLite
EXTRA_COLUMNS = 2000


def _metrics() -> None:
    mlflow.log_metric("recall", 0.8)
    mlflow.log_metric("precision", 0.5)


def _nan_metric(experiment: str) -> str:
    run_id = train(experiment, rows=200, n_estimators=2, seed=1)
    mlflow.MlflowClient().log_metric(run_id, "recall", math.nan, step=1)
    return run_id


def _mlmodel_not_yaml(experiment: str, tmp_path) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {python_function: [unclosed\n  : : {{{\n")
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="mlmodel_not_yaml") as run:
        _metrics()
        mlflow.log_artifacts(str(folder), artifact_path="model")
    return run.info.run_id


def _fit(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=50).fit(frame, np.arange(len(frame)) % 2)


def _no_signature(experiment: str) -> str:
    frame = customer_data(60, seed=2, label=False)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="no_signature") as run:
        _metrics()
        mlflow.sklearn.log_model(_fit(frame), name="model", pip_requirements=requirements())
    return run.info.run_id


def _wide(experiment: str) -> str:
    frame = customer_data(60, seed=3, label=False)
    extra = pd.DataFrame(np.zeros((len(frame), EXTRA_COLUMNS)), columns=[f"extra_{i:04d}" for i in range(EXTRA_COLUMNS)])
    frame = pd.concat([frame, extra], axis=1)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="wide_model") as run:
        _metrics()
        mlflow.sklearn.log_model(_fit(frame), name="model", pip_requirements=requirements(),
                                 signature=infer_signature(frame.head(5)))
    return run.info.run_id


def test_hostile_runs_are_rejected_in_one_poll_and_a_good_run_still_registers(client, make_config, names, tmp_path):
    config = make_config()
    experiment = names["experiment"]
    hostile = {
        "nan": (_nan_metric(experiment), "metric:recall: recall=NaN"),
        "not_yaml": (_mlmodel_not_yaml(experiment, tmp_path), "model: model/MLmodel unreadable"),
        "no_signature": (_no_signature(experiment), "features: model has no signature"),
        "wide": (_wide(experiment), "features: feature set mismatch: extra columns ['extra_0000'"),
    }
    good = train(experiment)
    with captured() as logs:
        report = reconcile_once(client, config)
    assert report.ok, report.watches[0].errors
    assert {run_id for run_id, _ in report.watches[0].rejected} == {run_id for run_id, _ in hostile.values()}
    [(registered, version)] = report.watches[0].registered
    assert registered == good and staging(client, names["model"]) == version
    assert [v.run_id for v in versions_of(client, names["model"])] == [good]
    for kind, (run_id, expected) in hostile.items():
        tags = decision(client, run_id)
        assert tags[state.DECISION] == "rejected", kind
        assert expected in tags[state.REASON], (kind, tags[state.REASON][:300])
    wide_reason = decision(client, hostile["wide"][0])[state.REASON]
    assert len(wide_reason) <= state.RUN_TAG_LIMIT and wide_reason.endswith("...[truncated]")
    [wide_event] = [e for e in events(logs, "run_rejected") if e["run_id"] == hostile["wide"][0]]
    assert f"extra_{EXTRA_COLUMNS - 1:04d}" in wide_event["reason"] and len(wide_event["reason"]) > state.RUN_TAG_LIMIT
    assert not events(logs, "run_failed")
