"""Quiet watches: a watch whose last visit did nothing is not visited again while nothing it reads
has changed: the same watch settings, the same model (``ModelCache.generation``), the same audit
entries of its model (``AuditCache.stamp``), no run to decide, no run event, no ``ha`` lock to
check, no approval board and no scoring failure waiting for its retry time. Its report is an
empty one. Any doubt visits the watch: the skip only ever saves a visit whose every step would
have found nothing to do (see ``watcher.engine.fleet_memo`` for the models it reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import WatchConfig
from watcher.engine.fleet_memo import ModelCache
from watcher.engine.report import WatchReport
from watcher.engine.snapshot import AuditCache, Snapshot
from watcher.store import keys


@dataclass(frozen=True)
class _Mark:
    """What a visit that did nothing saw: the watch's settings, its model's generation, its audit
    stamp; and the empty report a quiet tick gives it (one object, never appended to)."""

    watch: WatchConfig
    model: int
    audit: tuple[int, int]
    report: WatchReport


@dataclass
class QuietWatches:
    """The watches whose last visit did nothing, with what that visit saw."""

    models: ModelCache
    audit: AuditCache
    migrated: set[tuple[str, str]]
    """The session's: its model cache, audit cache and migrated (model, alias) pairs."""
    marks: dict[tuple[str, str], _Mark] = field(default_factory=dict)

    def quiet(self, client: MlflowClient, watch: WatchConfig, snap: Snapshot, *,
              asked: Callable[[str], bool] | None, ha: bool) -> WatchReport | None:
        """The watch's (empty) report when it need not be visited: its last visit did nothing and
        nothing it reads changed since; None: visit it (:meth:`visited`)."""
        name, audit = watch.model_name, self.audit
        mark = self.marks.get((name, watch.experiment))
        if mark is not None and not ha and mark.model == self.models.generation.get(name, 0) \
                and (mark.watch is watch or mark.watch == watch) and not snap.has_candidates(watch) \
                and _eligible(watch, self.models.models.get(name)) \
                and (audit.due is None or audit.catch_up(client)) and mark.audit == audit.stamp(name) \
                and (name, watch.production_alias) in self.migrated \
                and not (asked is not None and asked(watch.experiment)):
            return mark.report
        return None

    def visited(self, watch: WatchConfig, visit: Callable[[], WatchReport]) -> WatchReport:
        """``visit()``, remembering what a visit that did nothing saw. A visit that did anything, or
        changed its model's audit stamp (an alias step wrote or read anew), has its model read again
        next tick and is visited again."""
        name, models, audit = watch.model_name, self.models, self.audit
        key = (name, watch.experiment)
        self.marks.pop(key, None)
        generation, before, present = models.generation.get(name, 0), audit.stamp(name), name in models.models
        report = visit()
        if present and _did_nothing(report) and audit.stamp(name) == before:
            self.marks[key] = _Mark(watch, generation, before, WatchReport(name, watch.experiment,
                                                                           experiment_id=report.experiment_id))
        else:
            models.dirty.add(name)  # it may have written: read its model next tick
        return report


def _eligible(watch: WatchConfig, model: RegisteredModel | None) -> bool:
    """Whether nothing but a change of its inputs can give the watch work (no approval board, no
    scoring failure whose retry time may come)."""
    if watch.approval is not None or model is None:
        return False
    return watch.scoring is None or keys.SCORING_FAILURE not in (model.tags or {})


def _did_nothing(report: WatchReport) -> bool:
    return not (report.registered or report.rejected or report.scored or report.queued or report.errors
                or report.poll_failed or report.standby or report.failure)
