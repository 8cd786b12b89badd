"""The ``safe_serialization`` gate: reject models whose loading would unpickle (run arbitrary code).

It reads the ``flavors`` of the model's MLmodel file (``ModelRef.flavors``, read once together with
the signature) and understands exactly one flavor:

* ``sklearn``: its ``serialization_format``. ``skops`` passes; ``pickle`` and ``cloudpickle`` are
  rejected with the format named; anything else (or none recorded) is rejected, saying so.

Every other flavor (``xgboost``, ``pytorch``, a custom ``python_function`` model, ...) is rejected
with a reason saying the gate does not understand it: the gate does not guess whether a format it
cannot read is safe. ``python_function`` next to a real flavor is only MLflow's generic loader
entry pointing at that flavor, so it is not judged on its own.
"""

from __future__ import annotations

from typing import Any

from handlers.base import GateContext, GateResult
from watcher.config import SafeSerializationGate

SAFE_FORMATS = ("skops",)
UNSAFE_FORMATS = ("pickle", "cloudpickle")
GENERIC = "python_function"


def _sklearn(flavor: dict[str, Any]) -> str | None:
    """Why the sklearn flavor is unsafe, or None when it is safe."""
    fmt = flavor.get("serialization_format")
    if fmt in SAFE_FORMATS:
        return None
    if fmt in UNSAFE_FORMATS:
        return f"sklearn flavor serialized with {fmt}: loading it unpickles, which can run arbitrary code (use skops)"
    if fmt is None:
        return "sklearn flavor records no serialization_format, so it is treated as pickle (use skops)"
    return f"sklearn flavor uses serialization_format '{fmt}', which this gate does not understand"


def safe_serialization_gate(ctx: GateContext, cfg: SafeSerializationGate) -> GateResult:
    """Pass only models whose every flavor is known to load without unpickling."""
    threshold = {"allowed_formats": list(SAFE_FORMATS), "understood_flavors": ["sklearn"]}
    if not cfg.safe_serialization:
        return GateResult("safe_serialization", True, "gate disabled (safe_serialization: false)", None, threshold)
    if ctx.model is None:
        return GateResult("safe_serialization", False, "no model to check", None, threshold)
    flavors = dict(ctx.model.flavors or {})
    if not flavors:
        return GateResult("safe_serialization", False, "the model's MLmodel file has no readable flavors",
                          None, threshold)
    judged = {name: conf for name, conf in flavors.items() if name != GENERIC} or {GENERIC: flavors[GENERIC]}
    value: dict[str, Any] = {}
    problems = []
    for name, conf in judged.items():
        conf = conf if isinstance(conf, dict) else {}
        if name == "sklearn":
            value[name] = conf.get("serialization_format")
            why = _sklearn(conf)
        else:
            value[name] = None
            why = (f"flavor '{name}' is not understood by this gate (it only checks the sklearn flavor's "
                   "serialization_format), so its serialization cannot be shown to be safe")
        if why:
            problems.append(why)
    if problems:
        return GateResult("safe_serialization", False, "; ".join(problems), value, threshold)
    return GateResult("safe_serialization", True, "", value, threshold)
