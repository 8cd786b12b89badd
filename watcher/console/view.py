"""The console's view of the fleet: frozen values built after each tick, read by every page view.

A :class:`FleetView` is what ``/`` renders, from memory only: one :class:`ModelRow` per watched
model (plus one per refused watch), failed and refused first. Data that other parts of the daemon
own comes through optional :class:`Providers` (each a callable returning a mapping keyed by model
name, read once per tick); a column is shown only where its provider exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

STATE_ORDER = {"failed": 0, "refused": 1, "unknown": 2, "ok": 3}
"""Sort rank of a watch state on ``/``: what needs a person comes first."""


@dataclass(frozen=True)
class LastDecision:
    """The last decision the daemon made for a model (from a tick's report, or a model page's read)."""

    run_id: str
    decision: str
    """``registered``, ``rejected`` or ``error``."""
    detail: str
    """``v3`` for a registration, the reason for a rejection."""
    at: str
    """ISO-8601 UTC time: the decision's own time when known, else the end of the tick that made it."""


@dataclass(frozen=True)
class RefusedWatch:
    """A watch the daemon refuses (its experiment may not feed the model): shown as a row of its own."""

    experiment: str
    model_name: str
    reason: str


@dataclass(frozen=True)
class ModelRow:
    """One row of ``/``."""

    name: str
    experiment: str
    experiment_id: str | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    staging_alias: str = "staging"
    production_alias: str = "production"
    last: LastDecision | None = None
    state: str = "unknown"
    """``ok``, ``failed``, ``refused`` or ``unknown`` (no tick has covered it yet)."""
    reason: str = ""
    """Why the watch is failed or refused (empty when ok)."""
    pending_approvals: int | None = None
    undelivered: int | None = None
    replica: str | None = None
    """Under ``ha``: the replica acting for the model (this one's name, or ``another replica``)."""

    @property
    def staging(self) -> str | None:
        return self.aliases.get(self.staging_alias)

    @property
    def production(self) -> str | None:
        return self.aliases.get(self.production_alias)

    @property
    def rank(self) -> tuple[int, str, str]:
        return STATE_ORDER.get(self.state, 2), self.name, self.experiment


@dataclass(frozen=True)
class Providers:
    """What other parts of the daemon know, each optional (None: the column is not shown).

    Every callable is read once at the end of each tick, on the poll thread, and must answer from
    memory (no request to MLflow)."""

    watch_states: Callable[[], Mapping[str, tuple[str, str]]] | None = None
    """Model name -> (state ``ok``/``failed``, reason): the watches' own bulkhead states."""
    refused: Callable[[], Mapping[str, RefusedWatch]] | None = None
    """Experiment name -> its refusal."""
    approvals: Callable[[], Mapping[str, int] | None] | None = None
    """Model name -> pending approval requests (an answer of None: approvals are off, no column)."""
    undelivered: Callable[[], Mapping[str, int] | None] | None = None
    """Model name -> outgoing events not delivered yet (None: no events block, no column)."""
    replica: Callable[[], str | None] | None = None
    """This replica's name under ``ha`` (None without it)."""


@dataclass(frozen=True)
class FleetView:
    """Everything ``/`` shows, as of the end of one tick."""

    rows: tuple[ModelRow, ...] = ()
    version: int = 0
    """Grows with every tick: the page's refresh swaps its rows only when it changed."""
    updated_at: str | None = None
    """ISO-8601 UTC end of the last tick (None before the first)."""
    columns: frozenset[str] = frozenset()
    """Optional columns shown: ``approvals``, ``events``, ``replica``."""
    by_name: Mapping[str, ModelRow] = field(default_factory=lambda: MappingProxyType({}))

    def row(self, name: str) -> ModelRow | None:
        return self.by_name.get(name)

    def counts(self) -> dict[str, Any]:
        """Rows per state, for the page's summary line."""
        found: dict[str, int] = {}
        for row in self.rows:
            found[row.state] = found.get(row.state, 0) + 1
        return {"models": len(self.by_name), **found}
