"""One entry of the log event catalogue (:mod:`watcher.obs.events`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventSpec:
    """One log event: its name, usual level, fields, meaning, what to do about it, who emits it."""

    name: str
    level: str  # the usual level: debug|info|warning|error (critical: uncaught_exception only)
    fields: tuple[str, ...]  # the fields it carries besides the bound context
    meaning: str  # what happened
    action: str  # what an operator should do ("nothing" is allowed)
    emitter: str  # "daemon" | "cli" | "both"


def event_spec(name: str, level: str, emitter: str, fields: str, meaning: str, action: str = "nothing") -> EventSpec:
    """An :class:`EventSpec` with its fields given as one space-separated string."""
    return EventSpec(name, level, tuple(fields.split()), meaning, action, emitter)
