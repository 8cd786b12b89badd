"""Custom gates used by the tests (the documented protocol)."""

from handlers.base import GateContext, GateResult


def needs_param(ctx: GateContext, param: str) -> tuple[bool, str]:
    return (param in ctx.params, f"param '{param}' not logged")


def explodes(ctx: GateContext) -> bool:
    raise RuntimeError("boom")


def full_result(ctx: GateContext, limit: float) -> GateResult:
    value = ctx.metrics.get("accuracy", 0.0)
    return GateResult("accuracy_cap", value <= limit, f"accuracy {value} > {limit}", value, limit)
