"""SVG charts of a gated metric over a model's recent runs, as plain geometry for the template.

Each run is one ``<circle>`` (passing and failing runs get different classes); the gate's
thresholds (``min``/``max``) are dashed lines. Only gates whose value is a number are charted
(metric and champion gates); the newest run is on the right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, PAD = 480, 140, 24


@dataclass(frozen=True)
class Mark:
    """One run on a chart."""

    x: float
    y: float
    passed: bool
    run_id: str
    label: str
    """The title a browser shows on hover: run id, value, verdict."""


@dataclass(frozen=True)
class Line:
    """A threshold across the chart."""

    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    """One gated metric over the recent runs."""

    gate: str
    marks: tuple[Mark, ...]
    lines: tuple[Line, ...]
    low: float
    high: float
    width: int = WIDTH
    height: int = HEIGHT


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _thresholds(threshold: Any) -> list[tuple[str, float]]:
    if not isinstance(threshold, dict):
        return []
    return [(key, n) for key in ("min", "max") if (n := _number(threshold.get(key))) is not None]


def charts(runs: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> list[Chart]:
    """One chart per gate with a numeric value in any run. ``runs``: (run id, its gate verdicts),
    oldest first."""
    points: dict[str, list[tuple[int, str, float, bool]]] = {}
    limits: dict[str, list[tuple[str, float]]] = {}
    for index, (run_id, gates) in enumerate(runs):
        for gate in gates:
            name, value = str(gate.get("gate", "")), _number(gate.get("value"))
            if not name or value is None:
                continue
            points.setdefault(name, []).append((index, run_id, value, bool(gate.get("passed"))))
            limits[name] = _thresholds(gate.get("threshold")) or limits.get(name, [])
    return [_chart(name, found, limits.get(name, []), len(runs)) for name, found in sorted(points.items())]


def _chart(gate: str, found: list[tuple[int, str, float, bool]], limits: list[tuple[str, float]], n: int) -> Chart:
    values = [v for _i, _r, v, _p in found] + [v for _k, v in limits]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin

    def y(value: float) -> float:
        return round(HEIGHT - PAD - (value - low) / (high - low) * (HEIGHT - 2 * PAD), 2)

    step = (WIDTH - 2 * PAD) / max(n - 1, 1)
    marks = tuple(Mark(round(PAD + i * step if n > 1 else WIDTH / 2, 2), y(v), p, r,
                       f"{r[:8]}: {v:.4g} ({'pass' if p else 'fail'})") for i, r, v, p in found)
    lines = tuple(Line(y(v), f"{key} {v:.4g}") for key, v in limits)
    return Chart(gate, marks, lines, low, high)
