"""The gate protocol: what a gate receives, what it returns, and how any callable is adapted.

A gate is ``callable(ctx: GateContext, **kwargs) -> GateResult | bool | tuple[bool, str] | None``.

* ``GateResult(passed, reason, value, threshold)`` is the full answer;
* ``True`` / ``None`` mean pass, ``False`` means fail, ``(False, "why")`` fails with a reason.

A gate must not write to the registry: it only reads ``ctx``. An exception it raises becomes a
rejection whose reason is the error; it never stops the watcher. Every gate runs, and every
reason is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from watcher.config import GateSpec
from watcher.config.imports import import_callable
from watcher.store.models import ModelRef

__all__ = ["BUILTINS", "Gate", "GateContext", "GateFn", "GateResult", "ModelRef", "builtin", "coerce_result",
           "import_callable", "run_gate"]

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.models.signature import ModelSignature

    from watcher.config import WatchConfig


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate: pass or fail, why, and the value compared with the threshold."""

    gate: str
    passed: bool
    reason: str = ""
    value: Any = None
    threshold: Any = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe dict for the ``watcher.gates`` tag (NaN becomes null)."""
        value = None if isinstance(self.value, float) and math.isnan(self.value) else self.value
        return {"gate": self.gate, "passed": self.passed, "reason": self.reason,
                "value": value, "threshold": self.threshold}


@dataclass(frozen=True)
class GateContext:
    """Everything a gate may read. Built once per run by the engine; gates never write."""

    run: Run
    watch: WatchConfig
    model: ModelRef | None
    champion_metrics: Mapping[str, float] | None = None
    """Metrics of the run behind the production alias, or None when there is no champion."""
    champion_version: str | None = None

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.run.data.metrics)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.run.data.params)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.run.data.tags)

    @property
    def signature(self) -> ModelSignature | None:
        return self.model.signature if self.model else None


class Gate(Protocol):
    """Any callable of this shape is a gate."""

    def __call__(self, ctx: GateContext, /, **kwargs: Any) -> GateResult | bool | tuple[bool, str] | None: ...


def coerce_result(name: str, outcome: Any) -> GateResult:
    """Adapt what a custom gate returned into a :class:`GateResult`."""
    if isinstance(outcome, GateResult):
        return outcome
    if outcome is None or outcome is True:
        return GateResult(name, True)
    if outcome is False:
        return GateResult(name, False, "gate returned False")
    if isinstance(outcome, tuple) and len(outcome) == 2:
        passed, reason = outcome
        return GateResult(name, bool(passed), str(reason or ""))
    return GateResult(name, False, f"gate returned an unsupported value: {outcome!r}")


GATE_RAISED = "gate raised"
"""How the reason of a gate that raised starts (the watch is then failed on its own: bulkheads)."""


def run_gate(name: str, gate: Callable[..., Any], ctx: GateContext, **kwargs: Any) -> GateResult:
    """Call one gate; an exception is a rejection carrying the error, never a crash."""
    try:
        return coerce_result(name, gate(ctx, **kwargs))
    except Exception as exc:  # noqa: BLE001 - a gate's error is its verdict
        return GateResult(name, False, f"{GATE_RAISED} {type(exc).__name__}: {exc}")


GateFn = Callable[[GateContext, Any], GateResult]
"""A built-in gate's function: the context and its config block."""
BUILTINS: dict[type[GateSpec], GateFn] = {}
"""Config class -> the function that evaluates it."""
S = TypeVar("S", bound=GateSpec)


def builtin(spec: type[S]) -> Callable[[Callable[[GateContext, S], GateResult]], Callable[[GateContext, S], GateResult]]:
    """Register the decorated function as the evaluator of the built-in gate ``spec``."""

    def register_gate(fn: Callable[[GateContext, S], GateResult]) -> Callable[[GateContext, S], GateResult]:
        BUILTINS[spec] = fn
        return fn

    return register_gate

