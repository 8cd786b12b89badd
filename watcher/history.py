"""The production alias history MLflow does not keep: a versioned JSON list on a registered-model tag.

Each entry: ``seq`` (monotonic), ``version`` (None when the alias was removed), ``previous``,
``at`` (ISO UTC), ``by`` (``watcher``, the CLI user, or ``external``), ``action`` and ``reason``.
The oldest entries are trimmed so the tag stays within MLflow's 5000-character limit.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow import MlflowClient

from watcher import state


def read(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The history entries, oldest first (empty when none)."""
    data = state.load(tags.get(state.HISTORY))
    return list(data.get("entries", [])) if data else []


def encode(entries: list[dict[str, Any]], limit: int = state.MODEL_TAG_LIMIT) -> str:
    """Serialise, dropping the oldest entries until the JSON fits ``limit`` characters."""
    kept = list(entries)
    while True:
        text = state.dump({"entries": kept})
        if len(text) <= limit or len(kept) <= 1:
            return text
        kept.pop(0)


def append(client: MlflowClient, model_name: str, tags: dict[str, str], *, version: str | None,
           previous: str | None, by: str, action: str, reason: str, amend_external_within_s: float = 0) -> dict[str, Any]:
    """Append an entry and write the tag; returns the entry.

    With ``amend_external_within_s``, a trailing ``external`` entry for the same version that is
    that recent is replaced (keeping its ``seq``): the daemon saw a CLI move before the CLI
    recorded it, and the change must not count twice.
    """
    entries = read(tags)
    seq = (entries[-1]["seq"] + 1) if entries else 1
    if (amend_external_within_s and entries and entries[-1].get("by") == "external"
            and entries[-1].get("version") == version
            and state.age_seconds(entries[-1].get("at")) <= amend_external_within_s):
        seq = entries.pop()["seq"]
    entry = {"seq": seq, "version": version, "previous": previous, "at": state.now_iso(),
             "by": by, "action": action, "reason": reason}
    entries.append(entry)
    value = encode(entries)
    client.set_registered_model_tag(model_name, state.HISTORY, value)
    tags[state.HISTORY] = value
    return entry


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
        lines.append(f"{e['seq']:>4}  {str(e.get('version') or '-'):>7}  {str(e.get('previous') or '-'):>8}  "
                     f"{e.get('at', ''):20}  {str(e.get('by', '')):12}  {str(e.get('action', '')):9}  "
                     f"{e.get('reason', '')}")
    return "\n".join(lines)


def to_json(entries: list[dict[str, Any]]) -> str:
    """Entries as pretty JSON."""
    return json.dumps(entries, indent=2)
