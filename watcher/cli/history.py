"""``history``: the production alias history from the audit trail, or who held it at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlflow import MlflowClient

from watcher.cli.output import say, say_error
from watcher.config import WatchConfig
from watcher.engine.history import Held, held_at
from watcher.engine.promotion import production_history
from watcher.store.codec import parse_time


def format_table(entries: Sequence[dict[str, Any]]) -> str:
    """Human-readable history, newest first."""
    if not entries:
        return "(no production history)"
    lines = [f"{'seq':>4}  {'version':>7}  {'previous':>8}  {'at':20}  {'by':12}  {'action':9}  reason"]
    for e in reversed(entries):
        forced = "[FORCED] " if e.get("forced") else ""
        lines.append(f"{e['seq']:>4}  {e.get('version') or '-'!s:>7}  {e.get('previous') or '-'!s:>8}  "
                     f"{e.get('at', ''):20}  {e.get('by', '')!s:12}  {e.get('action', '')!s:9}  "
                     f"{forced}{e.get('reason', '')}")
    return "\n".join(lines)


def format_held(model: str, alias: str, held: Held) -> str:
    """One line: who put which version behind the alias, for ``history --at``."""
    move = held.move
    if move is None:
        return f"{model} '{alias}' at {held.as_of}: no version (no recorded move before that time)"
    what = f"v{move.version}" if move.version else "no version (alias removed)"
    forced = " [FORCED]" if move.forced else ""
    return (f"{model} '{alias}' at {held.as_of}: {what}, put there by {move.by} at {move.at} "
            f"({move.action}){forced}: {move.reason}")


def history(client: MlflowClient, watch: WatchConfig, audit_experiment: str, at: str | None, as_json: bool) -> int:
    """The ``history`` verb; 2 for a bad ``--at`` time."""
    full = production_history(client, watch, audit_experiment)
    if at is not None:
        try:
            when = parse_time(at)
        except ValueError:
            say_error(f"--at '{at}' is not an ISO-8601 time such as 2026-11-20T10:00:00Z")
            return 2
        held = held_at(full, when, at)
        say(json.dumps(held.as_json(), indent=2) if as_json
            else format_held(watch.model_name, watch.production_alias, held))
        return 0
    entries = [e.public() for e in full]
    say(json.dumps(entries, indent=2) if as_json else format_table(entries))
    return 0
