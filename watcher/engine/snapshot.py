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
from watcher.engine.fleet_memo import ModelCache
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
    changes: dict[str, int] = field(default_factory=dict)
    """Model -> a count bumped whenever its held entries change or one of its aliases is touched."""
    epoch: int = 0
    """Bumped when everything held is dropped (another audit experiment)."""

    def stamp(self, model: str) -> tuple[int, int]:
        """What the entries of ``model`` are now: equal stamps, equal entries (``fleet_memo``)."""
        return self.epoch, self.changes.get(model, 0)

    def catch_up(self, client: MlflowClient) -> bool:
        """Read what is new now if this tick has not yet (:meth:`expire`); False when that failed
        (the watch's own alias step then meets the error, where it is classified)."""
        if self.due is None:
            return True
        try:
            self.refresh(client, self.due)
        except Exception:  # noqa: BLE001 - the watch is visited and meets the error in its alias step, where it is said
            return False
        self.due = None
        return True

    def expire(self, experiment: str) -> None:
        """A tick started: read what is new before the next alias step, not before the runs, so
        the search is never on the way from a run's end to its staging move."""
        self.due = experiment

    def refresh(self, client: MlflowClient, experiment: str) -> None:
        """Read what is new in the trail (everything on the first call, or after a change of experiment)."""
        if experiment != self.experiment or self.trail is None:
            self.experiment, self.entries, self.watermark, self.dirty = experiment, {}, None, set()
            self.epoch += 1
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
            read = {e.id: e for e in audit.recent(client, self.trail, model, alias, n=RECENT)}
            if read != self.entries.get(key):
                self._changed(model)
            self.entries[key] = read
            self.dirty.discard(key)
        return audit.order(list(self.entries.get(key, {}).values()))[-RECENT:]

    def touch(self, model: str, alias: str) -> None:
        """The alias took the exact path (or was moved by the watcher): read it directly next tick."""
        self.dirty.add((model, alias))
        self._changed(model)

    def _changed(self, model: str) -> None:
        self.changes[model] = self.changes.get(model, 0) + 1

    def _merge(self, key: tuple[str, str], found: Sequence[AuditEntry]) -> None:
        held = self.entries.setdefault(key, {})
        for entry in found:
            if held.get(entry.id) != entry:
                held[entry.id] = entry
                self._changed(key[0])
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
    fresh: frozenset[str] = frozenset()
    """Names of the models read in this tick. Any other comes from an earlier tick
    (``watcher.engine.fleet_memo``): a watch acting on its runs reads it again first."""

    def read_again(self, model_name: str, ha: bool) -> bool:
        """Whether a watch acting on its runs reads its model again first: under ``ha`` (another
        replica may have moved on), or when the model was not read in this tick."""
        return ha or model_name not in self.fresh

    def has_candidates(self, watch: WatchConfig) -> bool:
        """Whether the watch's experiment may hold a run to decide (unknown counts as yes)."""
        exp_id = self.experiment_ids.get(watch.experiment)
        return exp_id is None or self.busy is None or exp_id in self.busy


def snapshot(client: MlflowClient, config: WatcherConfig, watches: Sequence[WatchConfig], known: ExperimentIds,
             support: SearchSupport, cache: AuditCache, *, scan: bool = True,
             models: ModelCache | None = None) -> Snapshot:
    """Read the fleet: models, experiments with work, new audit entries (a fixed number of requests).

    ``scan`` False (a run event: its watches are known to have work) skips the search for
    experiments with work, so every watch searches its own runs at once. The audit trail is read
    lazily, at the tick's first alias step (:meth:`AuditCache.expire`). With ``models`` (the
    daemon's :class:`~watcher.engine.fleet_memo.ModelCache`) the models are kept across ticks and
    only the due ones are read again, after the search for work, so that theirs are among them."""
    ids = known.cached_many(client, {w.experiment for w in watches})  # one lock for the fleet, then the unknown ones
    ids.update((w.experiment, found) for w in watches
               if w.experiment not in ids and (found := known.find(client, w.experiment)) is not None)
    names = {w.model_name for w in watches}
    if models is None:
        held = batch_reads.models_by_name(client, names)
        fresh = frozenset(names)
        busy = _busy(client, config, watches, held, ids, support) if scan else None
    else:
        done = models.fill(client, names)
        busy = _busy(client, config, watches, models.models, ids, support, models.starts) if scan else None
        working = None if busy is None else {w.model_name for w in watches if ids.get(w.experiment) in busy}
        fresh = models.refresh(client, names, working, done)
        held = models.view(names)
    cache.expire(config.audit_experiment)
    return Snapshot(MappingProxyType(held),
                    MappingProxyType({w.experiment: ids[w.experiment] for w in watches if w.experiment in ids}),
                    None if busy is None else frozenset(busy), fresh)


def _busy(client: MlflowClient, config: WatcherConfig, watches: Sequence[WatchConfig],
          models: Mapping[str, RegisteredModel], ids: dict[str, str], support: SearchSupport,
          memo: dict[tuple[str, str, int], tuple[RegisteredModel | None, int]] | None = None) -> set[str] | None:
    """Experiment ids with an undecided run past their own cursor; None when the server cannot say.

    ``memo`` (the ``ModelCache``'s) keeps each watch's start of search per model object, so a
    model kept across ticks is not parsed again."""
    if not support.null_filter:
        return None  # the server refuses IS NULL: each watch searches (and filters) itself
    overlap = int(config.cursor_overlap_seconds * 1000)
    groups: dict[str | None, dict[str, int]] = {}
    for watch in watches:
        exp_id = ids.get(watch.experiment)
        if exp_id is None:
            continue
        start = _start(models.get(watch.model_name), watch.model_name, exp_id, overlap, memo)
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


def _start(model: RegisteredModel | None, name: str, exp_id: str, overlap: int,
           memo: dict[tuple[str, str, int], tuple[RegisteredModel | None, int]] | None) -> int:
    """Where a watch's search starts: its cursor less the overlap, or its onboarding window's start;
    from ``memo`` while the model is the same object as last tick (the same tags)."""
    key = (name, exp_id, overlap)
    held = memo.get(key) if memo is not None else None
    if held is not None and held[0] is model:
        return held[1]
    tags = registry.tags_of(model) if model is not None else {}
    start = max(read_cursor(tags, exp_id) - overlap, window_start(tags, exp_id))  # a new watch's window
    if memo is not None:
        memo[key] = (model, start)
    return start
