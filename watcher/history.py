"""Reading and printing the production alias history.

The history itself lives in the audit experiment (``watcher.audit``: one run per move, never
trimmed). This module reads the *legacy* ``watcher.production_history`` registered-model tag
(a versioned JSON list kept by earlier releases; ``watcher.audit.migrate_legacy`` carries it over
once) and formats entries for the CLI.

An entry: ``id`` (the audit run id, stable), ``seq`` (its position, 1 = oldest), ``version``
(None when the alias was removed), ``previous``, ``at`` (ISO UTC), ``by`` (the CLI user, or
``external``), ``action``, ``reason`` and ``forced``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from watcher import state


def read(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The legacy tag's entries, oldest first (empty when none)."""
    data = state.load(tags.get(state.HISTORY))
    return list(data.get("entries", [])) if data else []


def previous_version(entries: list[dict[str, Any]], current: str | None) -> str | None:
    """The most recent production version in history that is not ``current``."""
    for entry in reversed(entries):
        version = entry.get("version")
        if version is not None and version != current:
            return version
    return None


def format_table(entries: list[dict[str, Any]]) -> str:
    """Human-readable history, newest first."""
    if not entries:
        return "(no production history)"
    lines = [f"{'seq':>4}  {'version':>7}  {'previous':>8}  {'at':20}  {'by':12}  {'action':9}  reason"]
    for e in reversed(entries):
        forced = "[FORCED] " if e.get("forced") else ""
        lines.append(f"{e['seq']:>4}  {str(e.get('version') or '-'):>7}  {str(e.get('previous') or '-'):>8}  "
                     f"{e.get('at', ''):20}  {str(e.get('by', '')):12}  {str(e.get('action', '')):9}  "
                     f"{forced}{e.get('reason', '')}")
    return "\n".join(lines)


def to_json(entries: list[dict[str, Any]]) -> str:
    """Entries as pretty JSON, oldest first."""
    return json.dumps(entries, indent=2)


def parse_time(text: str) -> int:
    """Epoch ms of an ISO-8601 time (``2026-11-20T10:00:00Z``; no zone means UTC); ValueError if bad."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def held_at(entries: list[dict[str, Any]], when_ms: int, asked: str) -> dict[str, Any]:
    """Which version held the alias at ``when_ms``: the last move at or before it (entries oldest first,
    each with ``start_ms``). ``version`` is None when nothing held it; ``at``/``by``/``action``/``reason``
    are the move that put it there (all None before the first move)."""
    move = None
    for entry in entries:
        if entry["start_ms"] <= when_ms:
            move = entry
        else:
            break
    keys = ("at", "by", "action", "reason", "forced", "id")
    return {"as_of": asked, "version": move["version"] if move else None,
            **{k: (move.get(k) if move else None) for k in keys}}


def format_held(model: str, alias: str, held: dict[str, Any]) -> str:
    """One line: who put which version behind the alias, for ``history --at``."""
    if held["action"] is None:
        return f"{model} '{alias}' at {held['as_of']}: no version (no recorded move before that time)"
    what = f"v{held['version']}" if held["version"] else "no version (alias removed)"
    forced = " [FORCED]" if held.get("forced") else ""
    return (f"{model} '{alias}' at {held['as_of']}: {what}, put there by {held['by']} at {held['at']} "
            f"({held['action']}){forced}: {held['reason']}")
