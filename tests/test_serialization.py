"""The safe_serialization gate: unit tests over MLmodel flavors, and one run of each format against
a real mlflow server (SQLite only)."""

from __future__ import annotations

import pytest
from helpers import decision, train, versions_of
from mlflow.entities import Run, RunData, RunInfo

from handlers.base import GateContext, ModelRef
from handlers.gates import evaluate
from watcher.config import SafeSerializationGate, WatchConfig
from watcher.engine import reconcile_once
from watcher.store import keys as state

WATCH = WatchConfig(experiment="e", model_name="m", gates=[{"safe_serialization": True}])
PYFUNC = {"loader_module": "mlflow.sklearn", "model_path": "model.skops"}


def _ctx(flavors) -> GateContext:
    info = RunInfo(run_id="r1", experiment_id="1", user_id="u", status="FINISHED", start_time=1, end_time=2,
                   lifecycle_stage="active")
    return GateContext(run=Run(info, RunData()), watch=WATCH, model=ModelRef("models:/m-1", "m-1", None, flavors=flavors))


def _gate(flavors, enabled: bool = True):
    return evaluate(_ctx(flavors), [SafeSerializationGate(safe_serialization=enabled)])[1]


def test_config_accepts_the_gate_key():
    assert isinstance(WATCH.gates[0], SafeSerializationGate) and WATCH.gates[0].safe_serialization


def test_skops_passes():
    result = _gate({"python_function": PYFUNC, "sklearn": {"serialization_format": "skops"}})
    assert result.passed and result.gate == "safe_serialization"
    assert result.value == {"sklearn": {"serialization_format": "skops", "skops_trusted_types": None}}


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_pickle_formats_are_rejected_naming_the_format(fmt):
    result = _gate({"python_function": PYFUNC, "sklearn": {"serialization_format": fmt}})
    assert not result.passed and f"serialized with {fmt}" in result.reason


@pytest.mark.parametrize("flavors, expected", [
    ({"python_function": PYFUNC, "xgboost": {"data": "model.xgb"}}, "flavor 'xgboost' is not understood"),
    ({"python_function": {"python_model": "python_model.pkl", "cloudpickle_version": "3.0"}},
     "flavor 'python_function' is not understood"),
    ({"sklearn": {}}, "records no serialization_format"),
    ({}, "no readable flavors"),
    (None, "no readable flavors"),
])
def test_flavors_it_does_not_understand_are_rejected_saying_so(flavors, expected):
    result = _gate(flavors)
    assert not result.passed and expected in result.reason


def test_disabled_gate_passes_anything():
    assert _gate({"sklearn": {"serialization_format": "pickle"}}, enabled=False).passed


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)  # logic: in-process SQLite
def test_a_pickled_run_is_rejected_and_a_skops_run_registered(client, make_config, names):
    config = make_config(gates="      - safe_serialization: true\n")
    pickled = train(names["experiment"], serialization_format="pickle")
    safe = train(names["experiment"], seed=11)
    report = reconcile_once(client, config)
    assert [r for r, _ in report.watches[0].registered] == [safe]
    tags = decision(client, pickled)
    assert tags[state.DECISION] == "rejected"
    assert "safe_serialization: sklearn flavor serialized with pickle" in tags[state.REASON]
    assert [v.run_id for v in versions_of(client, names["model"])] == [safe]
