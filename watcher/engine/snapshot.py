"""The fleet's state for one tick in a fixed number of requests, however many watches there are.

Before any watch is visited, :func:`snapshot` reads:

* every watched registered model (aliases, tags and so the cursors) in one search;
* which watched experiments have work: one ``search_runs`` over all their ids for finished runs
  without a decision, from the oldest cursor (minus the overlap) of the group, each experiment's
  own cursor applied here (one search per distinct ``run_filter``);
* the audit trail's new entries since the newest one seen (:class:`AuditCache`, one search).

A watch whose experiment has no undecided run and whose aliases are settled in the cache then
costs no request at all. Only watches with work (candidates, an alias that moved, an open
intent, scoring due) make their own requests, exactly as before, so every guarantee of the
per-watch path holds: the cache only ever sends a watch down the exact path, never past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException

from watcher.config import WatchConfig, WatcherConfig
from watcher.obs.logs import get_logger
from watcher.store import audit, batch_reads, registry
from watcher.store.audit import AuditEntry, AuditTrail
from watcher.store.cursors import read_cursor
from watcher.store.experiments import ExperimentIds
from watcher.store.ownership import window_start
from watcher.store.search import SearchSupport

log = get_logger("watcher.engine")
RECENT = 10
"""Entries kept per (model, alias): as many as ``audit.recent`` reads on the exact path."""
AUDIT_OVERLAP_MS = 300_000
"""Audit entries started up to 5 minutes before the newest one seen are read again each tick: a
writer (the CLI on a laptop) whose clock lags, or an intent finished since, is still seen."""


@dataclass
class AuditCache:
    """The newest audit entries per (model, alias), kept by one process across ticks.

    Loaded in full once (pages of 1,000), then one search per tick for entries started since the
    newest seen minus :data:`AUDIT_OVERLAP_MS`. A (model, alias) whose alias step took the exact
    path is *dirty*: the next tick reads its entries directly (``audit.recent``) once."""

    experiment: str | None = None
    trail: AuditTrail | None = None
    """The audit experiment (its id resolved per tracking server, through ``experiments.IDS``)."""
    entries: dict[tuple[str, str], dict[str, AuditEntry]] = field(default_factory=dict)
    watermark: int | None = None
    """Start time (epoch ms) of the newest entry read, never ahead of :attr:`clock`."""
    dirty: set[tuple[str, str]] = field(default_factory=set)
    due: str | None = None
    """The audit experiment to read at the first :meth:`recent` of this tick (:meth:`expire`)."""
    clock: Callable[[], float] = time.time
    """Epoch seconds (injected by tests)."""

    def expire(self, experiment: str) -> None:
        """A tick started: read what is new before the next alias step, not before the runs, so
        the search is never on the way from a run's end to its staging move."""
        self.due = experiment

    def refresh(self, client: MlflowClient, experiment: str) -> None:
        """Read what is new in the trail (everything on the first call, or after a change of experiment)."""
        if experiment != self.experiment or self.trail is None:
            self.experiment, self.entries, self.watermark, self.dirty = experiment, {}, None, set()
            self.trail = AuditTrail(experiment)
        since = None if self.watermark is None else max(0, self.watermark - AUDIT_OVERLAP_MS)
        found = batch_reads.audit_since(client, self.trail, since)
        for entry in found:
            if entry.model is not None and entry.alias is not None:
                self._merge((entry.model, entry.alias), [entry])
        newest = max((e.start_ms for e in found), default=0)
        # a writer whose clock runs ahead must not push the window past entries still to come
        self.watermark = min(max(self.watermark or 0, newest), int(self.clock() * 1000))

    def recent(self, client: MlflowClient, model: str, alias: str) -> list[AuditEntry]:
        """The newest entries of one alias, oldest first, as ``audit.recent`` would return them."""
        if self.due is not None:
            self.refresh(client, self.due)
            self.due = None
        key = (model, alias)
        if key in self.dirty and self.trail is not None:
            self.entries[key] = {}
            self._merge(key, audit.recent(client, self.trail, model, alias, n=RECENT))
            self.dirty.discard(key)
        return audit.order(list(self.entries.get(key, {}).values()))[-RECENT:]

    def touch(self, model: str, alias: str) -> None:
        """The alias took the exact path (or was moved by the watcher): read it directly next tick."""
        self.dirty.add((model, alias))

    def _merge(self, key: tuple[str, str], found: Sequence[AuditEntry]) -> None:
        held = self.entries.setdefault(key, {})
        for entry in found:
            held[entry.id] = entry
        if len(held) > 2 * RECENT:
            kept = audit.order(list(held.values()))[-RECENT:]
            self.entries[key] = {e.id: e for e in kept}


@dataclass(frozen=True)
class Snapshot:
    """What one tick knows of the fleet before it visits a watch (tick data: read-only)."""

    models: Mapping[str, RegisteredModel]
    """Model name -> the registered model (missing: not created yet)."""
    experiment_ids: Mapping[str, str]
    """Experiment name -> id, for the watched experiments that exist."""
    busy: frozenset[str] | None
    """Ids of experiments with an undecided finished run; None: unknown (every watch searches)."""

    def has_candidates(self, watch: WatchConfig) -> bool:
        """Whether the watch's experiment may hold a run to decide (unknown counts as yes)."""
        exp_id = self.experiment_ids.get(watch.experiment)
        return exp_id is None or self.busy is None or exp_id in self.busy


def snapshot(client: MlflowClient, config: WatcherConfig, watches: Sequence[WatchConfig], known: ExperimentIds,
             support: SearchSupport, cache: AuditCache, *, scan: bool = True) -> Snapshot:
    """Read the fleet: models, experiments with work, new audit entries (a fixed number of requests).

    ``scan`` False (a run event: its watches are known to have work) skips the search for
    experiments with work, so every watch searches its own runs at once. The audit trail is read
    lazily, at the tick's first alias step (:meth:`AuditCache.expire`)."""
    ids = {w.experiment: found for w in watches if (found := known.find(client, w.experiment)) is not None}
    models = batch_reads.models_by_name(client, {w.model_name for w in watches})
    busy = _busy(client, config, watches, models, ids, support) if scan else None
    cache.expire(config.audit_experiment)
    return Snapshot(MappingProxyType(models),
                    MappingProxyType({w.experiment: ids[w.experiment] for w in watches if w.experiment in ids}),
                    None if busy is None else frozenset(busy))


def _busy(client: MlflowClient, config: WatcherConfig, watches: Sequence[WatchConfig],
          models: dict[str, RegisteredModel], ids: dict[str, str], support: SearchSupport) -> set[str] | None:
    """Experiment ids with an undecided run past their own cursor; None when the server cannot say."""
    if not support.null_filter:
        return None  # the server refuses IS NULL: each watch searches (and filters) itself
    overlap = int(config.cursor_overlap_seconds * 1000)
    groups: dict[str | None, dict[str, int]] = {}
    for watch in watches:
        exp_id = ids.get(watch.experiment)
        if exp_id is None:
            continue
        model = models.get(watch.model_name)
        tags = registry.tags_of(model) if model is not None else {}
        start = max(read_cursor(tags, exp_id) - overlap, window_start(tags, exp_id))  # a new watch's window
        since = groups.setdefault(watch.run_filter, {})
        since[exp_id] = min(since.get(exp_id, start), start)
    busy: set[str] = set()
    for run_filter, since in groups.items():
        try:
            found = batch_reads.undecided_by_experiment(client, sorted(since), max(0, min(since.values())),
                                                  config.page_size, run_filter)
        except MlflowException as exc:
            if exc.error_code != "INVALID_PARAMETER_VALUE":
                raise
            log.debug("fleet_scan_refused", error=str(exc))
            return None  # each watch's own search finds out and says so once
        busy.update(exp_id for exp_id, runs in found.items()
                    if exp_id in since and any(end >= since[exp_id] for _run, end in runs))
    return busy
