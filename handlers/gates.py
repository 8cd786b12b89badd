"""Built-in gates. Each is ``gate(ctx, cfg) -> GateResult`` and reads only the context.

The registry: ``@builtin(SpecClass)`` registers a gate's function for its config class. A new
built-in gate is its config class in ``watcher/config/gates.py`` (``class MyGate(GateSpec,
key="my_key")``, which registers the YAML key) and its function here under ``@builtin(MyGate)``;
nothing else lists gates. For a team-specific gate, use a custom handler instead
(``{handler: "pkg.mod:fn"}``, protocol in ``handlers/base.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from handlers import serialization  # noqa: F401 - registers the safe_serialization gate
from handlers.base import BUILTINS, GateContext, GateFn, GateResult, builtin, import_callable, run_gate
from watcher.config import (
    ChampionGate,
    CustomGate,
    DataGate,
    FeaturesGate,
    GateConfig,
    GateSpec,
    MetricGate,
)


def _fmt_number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_present(ctx: GateContext) -> GateResult:
    """Implicit gate: the run must have logged a model under the watch's ``artifact_path``."""
    path = ctx.watch.artifact_path
    if ctx.model is None:
        return GateResult("model", False, f"no model logged under artifact_path '{path}'",
                          None, path)
    if ctx.model.error:
        return GateResult("model", False, f"{path}/MLmodel unreadable: {ctx.model.error}", ctx.model.source, path)
    return GateResult("model", True, "", ctx.model.source, path)


@builtin(MetricGate)
def metric_gate(ctx: GateContext, cfg: MetricGate) -> GateResult:
    """``min <= metric <= max``; missing or NaN is a rejection."""
    name = f"metric:{cfg.metric}"
    threshold = {k: v for k, v in (("min", cfg.min), ("max", cfg.max)) if v is not None}
    value = ctx.metrics.get(cfg.metric)
    if value is None:
        return GateResult(name, False, f"{cfg.metric} missing (needs {_bounds(cfg)})", None, threshold)
    if math.isnan(value):
        return GateResult(name, False, f"{cfg.metric}=NaN (needs {_bounds(cfg)})", value, threshold)
    if cfg.min is not None and value < cfg.min:
        return GateResult(name, False, f"{cfg.metric}={_fmt_number(value)} < min {_fmt_number(cfg.min)}", value, threshold)
    if cfg.max is not None and value > cfg.max:
        return GateResult(name, False, f"{cfg.metric}={_fmt_number(value)} > max {_fmt_number(cfg.max)}", value, threshold)
    return GateResult(name, True, "", value, threshold)


def _bounds(cfg: MetricGate) -> str:
    parts = [f">= {_fmt_number(cfg.min)}" if cfg.min is not None else "",
             f"<= {_fmt_number(cfg.max)}" if cfg.max is not None else ""]
    return " and ".join(p for p in parts if p)


@builtin(FeaturesGate)
def features_gate(ctx: GateContext, cfg: FeaturesGate) -> GateResult:
    """The signature's input names must be exactly ``features``; the reason names each difference."""
    expected = sorted(set(cfg.features))
    signature = ctx.signature
    if signature is None or signature.inputs is None:
        return GateResult("features", False, "model has no signature, so its features cannot be checked", None, expected)
    actual = signature.inputs.input_names()
    extra = sorted(set(map(str, actual)) - set(expected))
    missing = sorted(set(expected) - set(map(str, actual)))
    if not extra and not missing:
        return GateResult("features", True, "", sorted(map(str, actual)), expected)
    parts = ([f"extra columns {extra}"] if extra else []) + ([f"missing columns {missing}"] if missing else [])
    return GateResult("features", False, "feature set mismatch: " + ", ".join(parts), sorted(map(str, actual)), expected)


@builtin(ChampionGate)
def champion_gate(ctx: GateContext, cfg: ChampionGate) -> GateResult:
    """Challenger vs the production version's run, like ``mlflow.models.MetricThreshold``."""
    name = f"champion:{cfg.champion}"
    threshold: dict[str, Any] = {"min_delta": cfg.min_delta, "greater_is_better": cfg.greater_is_better,
                                 "champion_version": ctx.champion_version}
    if cfg.min_relative_delta is not None:
        threshold["min_relative_delta"] = cfg.min_relative_delta
    if ctx.champion_metrics is None:
        return GateResult(name, True, "no production version: nothing to beat", ctx.metrics.get(cfg.champion), threshold)
    value = ctx.metrics.get(cfg.champion)
    baseline = ctx.champion_metrics.get(cfg.champion)
    threshold["champion_value"] = baseline
    if value is None or math.isnan(value):
        return GateResult(name, False, f"{cfg.champion} missing on challenger", value, threshold)
    if baseline is None or math.isnan(baseline):
        return GateResult(name, True, f"champion v{ctx.champion_version} has no {cfg.champion}", value, threshold)
    sign = 1.0 if cfg.greater_is_better else -1.0
    delta = sign * (value - baseline)
    if delta < cfg.min_delta:
        return GateResult(name, False, f"{cfg.champion}={_fmt_number(value)} vs champion v{ctx.champion_version} "
                          f"{_fmt_number(baseline)}: change {_fmt_number(delta)} < min_delta {_fmt_number(cfg.min_delta)}",
                          value, threshold)
    if cfg.min_relative_delta is not None and baseline != 0:
        relative = delta / abs(baseline)
        if relative < cfg.min_relative_delta:
            return GateResult(name, False, f"{cfg.champion} relative change {_fmt_number(relative)} < "
                              f"min_relative_delta {_fmt_number(cfg.min_relative_delta)}", value, threshold)
    return GateResult(name, True, "", value, threshold)


def _dataset_columns(schema_json: str) -> list[str]:
    try:
        schema = json.loads(schema_json or "{}")
    except json.JSONDecodeError:
        return []
    specs = schema.get("mlflow_colspec") or schema.get("mlflow_tensorspec", {}).get("features") or []
    if isinstance(specs, str):
        specs = json.loads(specs)
    return [str(spec["name"]) for spec in specs if isinstance(spec, dict) and "name" in spec]


def _context_of(item: Any) -> str | None:
    """The ``mlflow.data.context`` tag of a dataset input (``training``, ``eval``, ...)."""
    return next((t.value for t in item.tags or [] if t.key == "mlflow.data.context"), None)


def _no_dataset(cfg: DataGate, seen: list[str], threshold: dict[str, Any]) -> GateResult:
    """No logged dataset input matches the gate: a pass unless ``required``."""
    if not cfg.required:
        return GateResult("data", True, "no matching dataset input (not required)", seen, threshold)
    want = f"dataset '{cfg.data}'" if cfg.data else "a dataset input"
    return GateResult("data", False, f"no {want}{' with context ' + cfg.context if cfg.context else ''} "
                      f"logged (found {seen})", seen, threshold)


def _column_problems(cfg: DataGate, columns: list[str], features: set[str]) -> list[str]:
    """Columns the gate wants and the dataset lacks; with ``exact``, features it has beyond them."""
    problems = []
    missing = sorted(set(cfg.columns) - set(columns))
    if missing:
        problems.append(f"missing columns {missing}")
    if cfg.exact and cfg.columns:
        extra = sorted(features - set(cfg.columns))
        if extra:
            problems.append(f"extra columns {extra}")
    return problems


def _signature_problems(ctx: GateContext, features: set[str]) -> list[str]:
    """With ``match_signature``: the dataset's features against the model signature's inputs."""
    sig = ctx.signature
    if sig is None or sig.inputs is None:
        return ["model has no signature to match"]
    names = set(map(str, sig.inputs.input_names()))
    if names != features:
        return [f"dataset vs signature: only in data {sorted(features - names)}, "
                f"only in signature {sorted(names - features)}"]
    return []


@builtin(DataGate)
def data_gate(ctx: GateContext, cfg: DataGate) -> GateResult:
    """Training-data alignment against the run's logged dataset inputs (``mlflow.log_input``)."""
    threshold = cfg.model_dump(exclude_none=True)
    inputs = list(ctx.run.inputs.dataset_inputs) if ctx.run.inputs else []
    matches = [item.dataset for item in inputs if (cfg.data is None or item.dataset.name == cfg.data)
               and (cfg.context is None or _context_of(item) == cfg.context)]
    if not matches:
        return _no_dataset(cfg, [d.dataset.name for d in inputs], threshold)
    dataset = matches[-1]
    columns = _dataset_columns(dataset.schema or "")
    features = set(columns) - set(cfg.targets)
    problems = _column_problems(cfg, columns, features)
    if cfg.match_signature:
        problems += _signature_problems(ctx, features)
    value = {"name": dataset.name, "digest": dataset.digest, "columns": columns}
    if problems:
        return GateResult("data", False, f"dataset '{dataset.name}': " + ", ".join(problems), value, threshold)
    return GateResult("data", True, "", value, threshold)


def evaluate(ctx: GateContext, gates: Sequence[GateConfig]) -> list[GateResult]:
    """Run the implicit model check and every configured gate; keep every result."""
    results = [run_gate("model", model_present, ctx)]
    for cfg in gates:
        if isinstance(cfg, CustomGate):
            results.append(run_gate(cfg.handler, import_callable(cfg.handler), ctx, **cfg.kwargs))
        else:
            fn = BUILTINS[type(cfg)]
            results.append(run_gate(fn.__name__.removesuffix("_gate"), _bound(fn, cfg), ctx))
    return results


def rejection_reason(results: Sequence[GateResult]) -> str:
    """``; ``-joined reasons of the failed gates, each prefixed by the gate name."""
    return "; ".join(f"{r.gate}: {r.reason}" for r in results if not r.passed)


def _bound(fn: GateFn, cfg: GateSpec) -> Callable[[GateContext], GateResult]:
    def gate(ctx: GateContext) -> GateResult:
        return fn(ctx, cfg)

    return gate
