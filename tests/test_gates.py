"""Unit tests of every gate: pure functions over real MLflow entities, no server."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, Run, RunData, RunInfo, RunInputs, RunTag
from mlflow.models import infer_signature

from demo.churn import FEATURES
from handlers.base import GateContext, ModelRef
from handlers.gates import evaluate, rejection_reason
from watcher.config import ChampionGate, CustomGate, DataGate, FeaturesGate, MetricGate, WatchConfig

WATCH = WatchConfig(experiment="e", model_name="m")


def _run(metrics: dict[str, float] | None = None, params: dict[str, str] | None = None, datasets=()) -> Run:
    info = RunInfo(run_id="r1", experiment_id="1", user_id="u", status="FINISHED", start_time=1, end_time=2,
                   lifecycle_stage="active", run_name="train")
    data = RunData(metrics=[Metric(k, v, 0, 0) for k, v in (metrics or {}).items()],
                   params=[Param(k, v) for k, v in (params or {}).items()], tags=[RunTag("t", "v")])
    return Run(info, data, RunInputs(dataset_inputs=list(datasets)))


def _model(columns=FEATURES) -> ModelRef:
    frame = pd.DataFrame({c: [1.0] for c in columns})
    return ModelRef("models:/m-1", "m-1", infer_signature(frame, [0]))


def _ctx(run=None, model=..., champion=None) -> GateContext:
    return GateContext(run=run or _run(), watch=WATCH, model=_model() if model is ... else model,
                       champion_metrics=champion, champion_version="3" if champion is not None else None)


def _one(ctx: GateContext, gate) -> object:
    return evaluate(ctx, [gate])[1]


@pytest.mark.parametrize("metrics, passed, reason", [
    ({"recall": 0.5}, True, ""),
    ({"recall": 0.1}, False, "recall=0.1 < min 0.2"),
    ({"recall": 0.95}, False, "recall=0.95 > max 0.9"),
    ({}, False, "recall missing"),
    ({"recall": math.nan}, False, "recall=NaN"),
])
def test_metric_gate(metrics, passed, reason):
    result = _one(_ctx(_run(metrics)), MetricGate(metric="recall", min=0.2, max=0.9))
    assert result.passed is passed and reason in result.reason
    assert result.threshold == {"min": 0.2, "max": 0.9}


def test_metric_gate_needs_a_bound():
    with pytest.raises(ValueError):
        MetricGate(metric="recall")


def test_features_gate_names_extra_and_missing():
    result = _one(_ctx(model=_model([*FEATURES[:-1], "customer_id"])), FeaturesGate(features=FEATURES))
    assert not result.passed
    assert "extra columns ['customer_id']" in result.reason and "missing columns ['app_sessions_7d']" in result.reason
    assert _one(_ctx(), FeaturesGate(features=list(reversed(FEATURES)))).passed


def test_features_gate_rejects_no_signature():
    result = _one(_ctx(model=ModelRef("models:/m-1", "m-1", None)), FeaturesGate(features=FEATURES))
    assert not result.passed and "no signature" in result.reason


@pytest.mark.parametrize("challenger, champion, gate, passed", [
    (0.5, None, ChampionGate(champion="recall"), True),
    (0.5, 0.5, ChampionGate(champion="recall"), True),
    (0.49, 0.5, ChampionGate(champion="recall"), False),
    (0.52, 0.5, ChampionGate(champion="recall", min_delta=0.05), False),
    (0.3, 0.4, ChampionGate(champion="loss", greater_is_better=False), True),
    (0.5, 0.4, ChampionGate(champion="loss", greater_is_better=False), False),
    (0.55, 0.5, ChampionGate(champion="recall", min_relative_delta=0.2), False),
])
def test_champion_gate_follows_metric_threshold(challenger, champion, gate, passed):
    name = gate.champion
    ctx = _ctx(_run({name: challenger}), champion=None if champion is None else {name: champion})
    assert _one(ctx, gate).passed is passed


def test_champion_gate_reason_names_both_values():
    result = _one(_ctx(_run({"recall": 0.4}), champion={"recall": 0.5}), ChampionGate(champion="recall"))
    assert "recall=0.4 vs champion v3 0.5" in result.reason


def test_model_gate_rejects_and_names_the_path():
    results = evaluate(_ctx(model=None), [])
    assert not results[0].passed and "artifact_path 'model'" in results[0].reason


def _dataset(name="customer_data", columns=(*FEATURES, "label"), context="training") -> DatasetInput:
    schema = json.dumps({"mlflow_colspec": [{"type": "double", "name": c} for c in columns]})
    return DatasetInput(Dataset(name, "abc", "code", "{}", schema, "{}"), [InputTag("mlflow.data.context", context)])


@pytest.mark.parametrize("gate, datasets, passed, reason", [
    (DataGate(data="customer_data", columns=FEATURES), [_dataset()], True, ""),
    (DataGate(data="customer_data", context="training", match_signature=True, targets=["label"]), [_dataset()], True, ""),
    (DataGate(data="customer_data"), [], False, "no dataset 'customer_data'"),
    (DataGate(data="customer_data", required=False), [], True, "not required"),
    (DataGate(data="customer_data", context="eval"), [_dataset()], False, "with context eval"),
    (DataGate(data=None, columns=["churn_score"]), [_dataset()], False, "missing columns ['churn_score']"),
    (DataGate(data=None, columns=FEATURES[:2], exact=True, targets=["label"]), [_dataset()], False, "extra columns"),
    (DataGate(data=None, match_signature=True, targets=["label"]), [_dataset(columns=[*FEATURES, "leak", "label"])],
     False, "only in data ['leak']"),
])
def test_data_gate(gate, datasets, passed, reason):
    result = _one(_ctx(_run(datasets=datasets)), gate)
    assert result.passed is passed and reason in result.reason


def test_custom_gates_follow_the_protocol():
    ctx = _ctx(_run({"accuracy": 0.99}, params={"lr": "0.1"}))
    passed, missing, crashed, full = evaluate(ctx, [
        CustomGate(handler="gates_for_tests:needs_param", param="lr"),
        CustomGate(handler="gates_for_tests:needs_param", param="depth"),
        CustomGate(handler="gates_for_tests:explodes"),
        CustomGate(handler="gates_for_tests:full_result", limit=0.95),
    ])[1:]
    assert passed.passed and not missing.passed and "param 'depth' not logged" in missing.reason
    assert not crashed.passed and crashed.reason == "gate raised RuntimeError: boom"
    assert not full.passed and full.gate == "accuracy_cap" and full.value == 0.99


def test_every_gate_runs_and_every_reason_is_kept():
    results = evaluate(_ctx(_run({"recall": 0.1}), model=None),
                       [MetricGate(metric="recall", min=0.2), MetricGate(metric="precision", min=0.05),
                        FeaturesGate(features=FEATURES)])
    reason = rejection_reason(results)
    assert len(results) == 4 and reason.count(";") == 3
    assert reason.startswith("model: ") and "precision missing" in reason
