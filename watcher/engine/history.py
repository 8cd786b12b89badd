"""Reading the production history: the previous version, and which version held the alias when.

Pure functions over audit entries (``watcher.store.audit.AuditEntry``, oldest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.store.audit import AuditEntry


def last_done(entries: Sequence[AuditEntry]) -> AuditEntry | None:
    """The newest recorded (``done``) move of ``entries`` (oldest first): what put the alias where
    it is; None before its first recorded move. The one definition every reader uses."""
    return next((entry for entry in reversed(entries) if entry.status == "done"), None)


def previous_version(entries: Sequence[AuditEntry], current: str | None) -> str | None:
    """The most recent production version in history that is not ``current``."""
    for entry in reversed(entries):
        if entry.version is not None and entry.version != current:
            return entry.version
    return None


@dataclass(frozen=True)
class Held:
    """Which version held an alias at a time, and the move that put it there (None before the first)."""

    as_of: str
    move: AuditEntry | None

    def as_json(self) -> dict[str, object]:
        """As ``history --at --json`` prints it."""
        move = self.move
        return {"as_of": self.as_of, "version": move.version if move else None,
                "at": move.at if move else None, "by": move.by if move else None,
                "action": move.action if move else None, "reason": move.reason if move else None,
                "forced": move.forced if move else None, "id": move.id if move else None}


def held_at(entries: Sequence[AuditEntry], when_ms: int, asked: str) -> Held:
    """The last move at or before ``when_ms`` (epoch ms)."""
    move = None
    for entry in entries:
        if entry.start_ms <= when_ms:
            move = entry
        else:
            break
    return Held(asked, move)
