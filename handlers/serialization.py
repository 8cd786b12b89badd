"""The ``safe_serialization`` gate: reject models whose loading would unpickle (run arbitrary code).

It reads the ``flavors`` of the model's MLmodel file (``ModelRef.flavors``, read once together with
the signature) and understands exactly one flavor:

* ``sklearn``: its ``serialization_format``. ``skops`` passes; ``pickle`` and ``cloudpickle`` are
  rejected with the format named; anything else (or none recorded) is rejected, saying so.
  A skops model also carries ``skops_trusted_types``, the types its loader is asked to trust
  (MLflow's loader once read them from there, so a crafted model could run code on load:
  GHSA-w582-9x45-8mpx). The gate compares them with the watcher's own ``trusted_types``
  allowlist and rejects naming each type outside it.

Every other flavor (``xgboost``, ``pytorch``, a custom ``python_function`` model, ...) is rejected
with a reason saying the gate does not understand it: the gate does not guess whether a format it
cannot read is safe. ``python_function`` next to a real flavor is only MLflow's generic loader
entry pointing at that flavor, so it is not judged on its own.
"""

from __future__ import annotations

from typing import Any

from handlers.base import GateContext, GateResult, builtin
from watcher.config import SafeSerializationGate

SAFE_FORMATS = ("skops",)
UNSAFE_FORMATS = ("pickle", "cloudpickle")
GENERIC = "python_function"


def _sklearn(flavor: dict[str, Any], trusted: list[str]) -> str | None:
    """Why the sklearn flavor is unsafe, or None when it is safe."""
    fmt = flavor.get("serialization_format")
    if fmt in SAFE_FORMATS:
        asked = flavor.get("skops_trusted_types") or []
        outside = sorted({str(t) for t in (asked if isinstance(asked, list) else [asked])} - set(trusted))
        if outside:
            return f"skops_trusted_types outside the watcher's trusted_types allowlist: {outside}"
        return None
    if fmt in UNSAFE_FORMATS:
        return f"sklearn flavor serialized with {fmt}: loading it unpickles, which can run arbitrary code (use skops)"
    if fmt is None:
        return "sklearn flavor records no serialization_format, so it is treated as pickle (use skops)"
    return f"sklearn flavor uses serialization_format '{fmt}', which this gate does not understand"


@builtin(SafeSerializationGate)
def safe_serialization_gate(ctx: GateContext, cfg: SafeSerializationGate) -> GateResult:
    """Pass only models whose every flavor is known to load without unpickling."""
    if ctx.model is None and cfg.safe_serialization:
        return GateResult("safe_serialization", False, "no model to check", None, _threshold(cfg))
    return check_flavors(ctx.model.flavors if ctx.model else None, cfg)


def _threshold(cfg: SafeSerializationGate) -> dict[str, Any]:
    return {"allowed_formats": list(SAFE_FORMATS), "understood_flavors": ["sklearn"],
            "trusted_types": list(cfg.trusted_types)}


def check_flavors(flavors: Any, cfg: SafeSerializationGate) -> GateResult:
    """The gate's verdict on an MLmodel ``flavors`` mapping (also used before scoring loads a model)."""
    threshold = _threshold(cfg)
    if not cfg.safe_serialization:
        return GateResult("safe_serialization", True, "gate disabled (safe_serialization: false)", None, threshold)
    flavors = dict(flavors or {})
    if not flavors:
        return GateResult("safe_serialization", False, "the model's MLmodel file has no readable flavors",
                          None, threshold)
    judged = {name: conf for name, conf in flavors.items() if name != GENERIC} or {GENERIC: flavors[GENERIC]}
    value: dict[str, Any] = {}
    problems = []
    for name, raw in judged.items():
        conf = raw if isinstance(raw, dict) else {}
        if name == "sklearn":
            value[name] = {"serialization_format": conf.get("serialization_format"),
                           "skops_trusted_types": conf.get("skops_trusted_types")}
            why = _sklearn(conf, list(cfg.trusted_types))
        else:
            value[name] = None
            why = (f"flavor '{name}' is not understood by this gate (it only checks the sklearn flavor's "
                   "serialization_format), so its serialization cannot be shown to be safe")
        if why:
            problems.append(why)
    if problems:
        return GateResult("safe_serialization", False, "; ".join(problems), value, threshold)
    return GateResult("safe_serialization", True, "", value, threshold)
