"""Alias policy as a pure decision, in the style of a sensor: what to do, never doing it.

Given an alias's newest audit-trail entries, where the alias points now and its policy,
:func:`decide` returns a :class:`Plan`; ``watcher.engine.aliases`` executes it. No I/O here, so
every case is a row of a table-driven test (``tests/test_policy.py``).

* an *intent* for the alias's version (``promote``/``rollback``, the watcher's own staging move
  or revert) is the tool's own move, never an external one. Its writer finishes it itself, so
  while that process may still be running the plan is to **wait** (the alias's position is the
  intent's, and scoring may go on, keyed on its id); it is **finished** here only when its writer
  is known to be gone (``gone``: computed by the caller, same host only) or it is older than
  ``handoff_timeout`` (another host, or a hung CLI): ``Finish.reason`` says which;
* an intent older than ``intent_ttl`` that the alias never reached is **abandoned**;
* the first time a non-production alias is watched with no recorded move: **adopt** its position;
* a position that differs from the newest recorded move is external: **record** it
  (``observed``, or ``removed``), and under ``revert`` **revert** it;
* an external move recorded earlier but not yet undone under ``revert``: **revert** it;
* otherwise **nothing**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.config import AliasPolicy
from watcher.engine.history import last_done
from watcher.store.audit import AuditEntry

INTENT_TTL_S = 300.0
"""Seconds an intent may wait for its alias move before it counts as abandoned (a CLI that died)."""
HANDOFF_TIMEOUT_S = 120.0
"""Seconds after which an intent whose alias already moved is finished by the daemon even though its
writer may still run (its writer on another host, where the daemon cannot see whether it is gone)."""
PROCESS_GONE = "process_gone"
TIMEOUT = "timeout"
WATCHER = "watcher"
"""``by`` of the daemon's own moves."""
EXTERNAL = "external"
"""``by`` of a move made outside the watcher (MLflow does not record who)."""


@dataclass(frozen=True)
class Finish:
    """Finish this intent: the alias already points where it meant to, and its writer will not."""

    intent: AuditEntry
    reason: str = PROCESS_GONE
    """``process_gone`` (its writer no longer runs) or ``timeout`` (older than the hand-off timeout)."""


@dataclass(frozen=True)
class Wait:
    """An intent whose alias already moved, while its writer may still finish it: leave it be."""

    intent: AuditEntry


@dataclass(frozen=True)
class Adopt:
    """Record the alias's current position as its baseline."""

    version: str


@dataclass(frozen=True)
class Record:
    """Record an external move (``version`` None: the alias was removed)."""

    version: str | None
    previous: str | None


@dataclass(frozen=True)
class Revert:
    """Put the alias back where the watcher's last recorded move left it.

    ``attempt`` is the external entry undone; None means the :class:`Record` of the same plan."""

    attempt: AuditEntry | None = None


Action = Finish | Wait | Adopt | Record | Revert


@dataclass(frozen=True)
class Plan:
    """What to do with one alias: intents to abandon, then the actions in order."""

    last: AuditEntry | None
    """The newest recorded move before the plan (what put the alias where it is, when nothing changes)."""
    actions: tuple[Action, ...] = ()
    abandon: tuple[AuditEntry, ...] = ()

    @property
    def name(self) -> str:
        """``nothing``, or the actions' names joined with ``+`` (``record+revert``), for logs and tests."""
        return "+".join(type(a).__name__.lower() for a in self.actions) or "nothing"


def settled(recent: Sequence[AuditEntry], current: str | None, policy: AliasPolicy) -> bool:
    """True when nothing can be due: the newest move is where the alias points, no intent is open,
    and no external move waits to be reverted (the tick then spends no further request)."""
    last = last_done(recent)
    return ((last.version if last else None) == current and not any(e.status == "pending" for e in recent)
            and not (policy == "revert" and last is not None and last.by == EXTERNAL))


def decide(recent: Sequence[AuditEntry], current: str | None, policy: AliasPolicy, *, production: bool,
           now: float, intent_ttl: float = INTENT_TTL_S, gone: frozenset[str] = frozenset(),
           handoff_timeout: float = HANDOFF_TIMEOUT_S) -> Plan:
    """The plan for one alias; ``recent`` oldest first, ``now`` in epoch seconds; ``gone``: ids of
    pending intents whose writing process is known to be gone."""
    last = last_done(recent)
    last_version = last.version if last else None
    intent, stale = _intents(recent, current, last_version, now, intent_ttl)
    if intent is not None:
        return Plan(last, (_settle_intent(intent, now, gone, handoff_timeout),), stale)
    if last is None and current is not None and not production:
        return Plan(last, (Adopt(current),), stale)
    if last_version != current:
        record = Record(current, last_version)
        return Plan(last, (record, Revert()) if policy == "revert" else (record,), stale)
    if policy == "revert" and last is not None and last.by == EXTERNAL:
        return Plan(last, (Revert(last),), stale)
    return Plan(last, (), stale)


def _intents(recent: Sequence[AuditEntry], current: str | None, last_version: str | None, now: float,
             intent_ttl: float) -> tuple[AuditEntry | None, tuple[AuditEntry, ...]]:
    """The open intent that put the alias where it is (the newest one), and the stale ones to abandon."""
    intent = None
    abandon: list[AuditEntry] = []
    for entry in (e for e in recent if e.status == "pending"):
        if entry.version == current and current != last_version:
            intent = entry
        elif now - entry.start_ms / 1000 > intent_ttl:
            abandon.append(entry)
    return intent, tuple(abandon)


def _settle_intent(intent: AuditEntry, now: float, gone: frozenset[str], handoff_timeout: float) -> Finish | Wait:
    """Finish an intent whose writer is gone or that timed out; otherwise wait for its writer."""
    if intent.id in gone:
        return Finish(intent, PROCESS_GONE)
    if now - intent.start_ms / 1000 > handoff_timeout:
        return Finish(intent, TIMEOUT)
    return Wait(intent)


def revert_target(history: Sequence[AuditEntry]) -> str | None:
    """Where a revert puts the alias: the version of the newest move not made externally (None: remove it)."""
    own = [e for e in history if e.by != EXTERNAL]
    return own[-1].version if own else None
