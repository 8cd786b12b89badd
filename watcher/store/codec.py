"""Values of the watcher's tags: versioned JSON, UTC times, cut strings. The one time parser.

Standard library only, so every layer can use it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

STATE_VERSION = 1


def now_iso(ms: int | None = None, timespec: str = "seconds") -> str:
    """ISO-8601 UTC time to the second (``2026-11-20T10:00:00Z``), from epoch milliseconds or now;
    ``timespec="milliseconds"`` keeps the milliseconds (decision times: a burst is ordered by them)."""
    when = datetime.now(timezone.utc) if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)
    return when.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """Epoch ms of an ISO-8601 time (``2026-11-20T10:00:00Z``; no zone means UTC); ValueError if bad."""
    when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def parse_time_or_none(text: str | None) -> int | None:
    """:func:`parse_time`, or None for an absent or unreadable time."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def dump(payload: dict[str, Any]) -> str:
    """Compact JSON with the state ``version`` field first."""
    return json.dumps({"version": STATE_VERSION, **payload}, separators=(",", ":"), default=str)


def load(value: str | None) -> dict[str, Any] | None:
    """Parse a state tag; None when absent, unreadable or of an unknown version."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return data


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 15] + "...[truncated]"
