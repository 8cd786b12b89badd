"""``registry-watcher explain --run RUN_ID``: why a run was registered or rejected, and what followed.

The data comes from :func:`watcher.engine.explanation.explain` (shared with the console's run
page); this module prints it as lines a person reads."""

from __future__ import annotations

import json
from typing import Any

from watcher.engine.explanation import VERSION_KEYS, ExplainError, explain
from watcher.store import keys as state

__all__ = ["VERSION_KEYS", "ExplainError", "explain", "format_text"]


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def format_text(found: dict[str, Any]) -> str:
    """The explanation as lines a person reads."""
    watch = found["watch"]
    lines = [f"run {found['run_id']} ({found['run_name']}) in experiment '{found['experiment']}': "
             f"{found['status']}, ended {found['ended_at'] or '-'}",
             f"watch: {'model ' + watch['model_name'] + ' (from ' + watch['source'] + ')' if watch else '(none)'}"
             + (f", run_filter {watch['run_filter']}" if watch and watch.get("run_filter") else "")]
    if not found["decision"]:
        lines.append(f"decision: none ({found.get('note', '')})")
        return "\n".join(lines)
    lines.append(f"decision: {found['decision'].upper()} at {found['decided_at'] or '-'}")
    if found["reason"]:
        lines.append(f"reason: {found['reason']}")
    lines.append("gates:")
    for gate in found["gates"]:
        verdict = "PASS" if gate.get("passed") else "FAIL"
        lines.append(f"  {verdict}  {gate.get('gate')}: value={_fmt_value(gate.get('value'))} "
                     f"threshold={_fmt_value(gate.get('threshold'))}" + (f"  ({gate['reason']})" if gate.get("reason") else ""))
    return "\n".join(lines + _version_lines(found["version"]))


def _version_lines(version: dict[str, Any] | None) -> list[str]:
    """The version's lines: its decision, the aliases on it today, the production moves onto it."""
    if version is None:
        return ["version: none"]
    if not version.get("exists"):
        return [f"version: v{version['version']} of {version['model_name']} (no longer exists)"]
    tags = version["tags"]
    lines = [f"version: v{version['version']} of {version['model_name']}, decision "
             f"{tags.get(state.DECISION, '-')}, aliases now: {', '.join(version['aliases']) or '-'}"]
    for move in version["production_moves"]:
        forced = " [FORCED]" if move.get("forced") else ""
        lines.append(f"  {move['at']}  {move['action']} by {move['by']}{forced}: {move['reason']}")
    return lines
