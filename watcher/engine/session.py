"""What a tick reads: the process's memo across ticks (:class:`Session`) and one watch's frozen
context for one tick (:class:`WatchContext`).

The session is the only state that outlives a tick; losing it (a restart) loses nothing but
requests. A tick's steps never write to their context: each returns what it did (see
``watcher.engine.runs``), and the next step receives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.facts import FactSink, no_facts
from watcher.engine.fleet_memo import ModelCache
from watcher.engine.quiet import QuietWatches
from watcher.engine.snapshot import AuditCache
from watcher.store import experiments
from watcher.store.experiments import ExperimentIds
from watcher.store.registry import CrashHook, no_crash
from watcher.store.search import SearchSupport

if TYPE_CHECKING:
    from watcher.approvals.board import Board


class Leader(Protocol):
    """The ``ha`` lock holder as the engine sees it (``watcher.service.leader`` implements it)."""

    def acquire(self, model_name: str) -> bool:
        """Before a watch: True when this replica holds (or just took) the model's lock."""
        ...

    def holds(self, model_name: str) -> bool:
        """Right before a write: True while the model's lock is held."""
        ...


def _process_ids() -> ExperimentIds:
    return experiments.IDS


@dataclass
class Session:
    """In-memory memo kept across ticks by one process. Losing it (a restart) loses nothing."""

    experiments: ExperimentIds = field(default_factory=_process_ids)
    """Experiment name -> id: the process's one cache (discovery adds what it found)."""
    warned_missing: set[str] = field(default_factory=set)
    search: SearchSupport = field(default_factory=SearchSupport)
    end_times: dict[str, dict[str, int]] = field(default_factory=dict)
    """Model -> version -> its run's end time (immutable facts), so staging checks cost no request."""
    migrated: set[tuple[str, str]] = field(default_factory=set)
    """(model, alias) pairs whose legacy history tag was checked (the migration runs once per process)."""
    audit: AuditCache = field(default_factory=AuditCache)
    """The newest audit entries per (model, alias), so a settled alias costs no request."""
    models: ModelCache = field(default_factory=ModelCache)
    """The watched registered models, re-read in a rolling window (``watcher.engine.fleet_memo``)."""
    quiet: QuietWatches = field(init=False)
    """The watches whose last visit did nothing: not visited while nothing they read changed."""
    refusals_said: set[tuple[str, str]] = field(default_factory=set)
    """(experiment, owner experiment id) pairs whose registration-time ``watch_refused`` was said."""
    approvals: Board | None = None
    """The approvals board (issue 27), shared with the daemon's API; made on first use when None."""
    facts: FactSink = no_facts
    """Told each committed staging move and decision at once (issue 28: the outgoing events' outbox)."""


    def __post_init__(self) -> None:
        self.quiet = QuietWatches(self.models, self.audit, self.migrated)


def always() -> bool:
    """The lock check without ``ha``: always held."""
    return True


@dataclass(frozen=True)
class WatchContext:
    """One watch in one tick: what every step reads and none writes, but one field.

    :attr:`end_times` is not tick data: it is the session's memo for this model
    (``Session.end_times[model]``, the same dict), a cache of immutable facts that staging fills in
    (``watcher.engine.staging``) so later ticks cost no request. What a tick did goes to its one
    output accumulator, the watch's ``WatchReport``."""

    client: MlflowClient
    config: WatcherConfig
    watch: WatchConfig
    crash: CrashHook = no_crash
    """Called at the named crash points (tests interrupt there and rerun)."""
    leading: Callable[[], bool] = always
    """With ``ha``: whether this replica still holds the model's lock (checked before writes)."""
    stop: threading.Event = field(default_factory=threading.Event)
    aliases: Mapping[str, str] = field(default_factory=dict)
    """The model's aliases as this tick knows them (a new context after the watcher moves one)."""
    end_times: dict[str, int] = field(default_factory=dict)
    """Version -> its run's end time: the session's memo for this model (a cache, not tick data),
    written by staging; the only mutable value a context carries."""
    facts: FactSink = no_facts
    """The session's :attr:`Session.facts`: told each fact the moment it is committed."""
