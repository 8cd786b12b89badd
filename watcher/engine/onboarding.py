"""Backfill on onboarding (``discover.backfill``): where a newly discovered watch's history starts.

When discovery first sees an experiment tagged with a model, it records the moment on the
experiment (tag ``registry-watcher.first_seen``: restarts and replicas read the same moment). A
watch that the model has never been fed by (no cursor, no window for its experiment) then gets
its onboarding window on the model (``watcher.onboarding.<experiment id>``):

* ``since_tagged`` (the default): runs that ended before the first sighting are never candidates;
* ``all`` / a date: they are, from the start of history / that date, and until the cursor passes
  the first sighting the watch is *backfilling*: each tick decides at most
  ``discover.backfill_batch`` runs of it (:func:`candidate_floor`, :func:`backfill_step`), so the other watches of the fleet
  keep their latency while the backlog drains tick after tick.

The first sighting is the time of this process's previous search when the experiment was not
tagged then (the tag appeared in between), else now. Configured ``watches`` have no window: they
take their experiment's whole history, as before.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import DiscoverConfig, WatcherConfig
from watcher.engine.ownership import Candidate
from watcher.engine.session import WatchContext
from watcher.obs.logs import get_logger
from watcher.store import registry
from watcher.store.codec import now_iso
from watcher.store.cursors import read_cursor, save_cursor
from watcher.store.ownership import Onboarding, first_seen_of, onboarding_of, write_first_seen, write_onboarding

log = get_logger("watcher.discovery")


def record_first_sight(client: MlflowClient, candidates: Sequence[Candidate], tags: Mapping[str, dict[str, str]],
                       earliest_ms: Mapping[str, int]) -> dict[str, int]:
    """Experiment name -> when it was first seen tagged with its model; written on the experiment
    when it was not recorded yet (``earliest_ms``: the lower bound this process knows, else now)."""
    now = int(time.time() * 1000)
    seen: dict[str, int] = {}
    for candidate in candidates:
        at = first_seen_of(tags.get(candidate.experiment, {}), candidate.model_name)
        if at is None:
            at = earliest_ms.get(candidate.experiment, now)
            write_first_seen(client, candidate.experiment_id, candidate.model_name, at)
        seen[candidate.experiment] = at
    return seen


def open_windows(client: MlflowClient, discover: DiscoverConfig, kept: Sequence[Candidate],
                 first_seen: Mapping[str, int], models: Mapping[str, RegisteredModel]) -> None:
    """Give each kept watch that never fed its model its onboarding window (once: restart-safe)."""
    for candidate in kept:
        model = models.get(candidate.model_name)
        tags = registry.tags_of(model) if model is not None else {}
        if onboarding_of(tags, candidate.experiment_id) is not None or read_cursor(tags, candidate.experiment_id):
            continue  # already onboarded, or fed by this experiment before (an earlier release, a watches entry)
        at = first_seen.get(candidate.experiment, int(time.time() * 1000))
        window = Onboarding(discover.backfill_from_ms(at), at)
        if model is None:
            registry.ensure_registered_model(client, candidate.model_name)
        write_onboarding(client, candidate.model_name, candidate.experiment_id, window)
        log.info("watch_onboarded", experiment=candidate.experiment, model_name=candidate.model_name,
                 backfill=str(discover.backfill), first_seen=now_iso(at), runs_from=now_iso(window.from_ms))


def candidate_floor(config: WatcherConfig, tags: dict[str, str], experiment_id: str, cursor: int) -> tuple[int, int]:
    """Where a watch's candidate search starts (epoch ms) at ``cursor``, and the most runs it may
    decide this tick (0: no limit). The overlap behind the cursor never reaches before the
    window's start; while a backfill lasts, ``discover.backfill_batch`` runs per tick."""
    since = max(0, cursor - int(config.cursor_overlap_seconds * 1000))
    window = onboarding_of(tags, experiment_id)
    if window is None:
        return since, 0
    limit = config.discover.backfill_batch if config.discover is not None and window.backfilling(cursor) else 0
    return max(since, window.from_ms), limit


def backfill_step(ctx: WatchContext, experiment_id: str, cursor: int, exhausted: bool, tags: dict[str, str]) -> None:
    """After a backfill batch: when every older run was handed out (``exhausted``), the cursor
    moves to the first sighting and the backfill is over (``backfill_completed``, said once);
    otherwise the next batch comes next tick (``backfill_progress``)."""
    window = onboarding_of(tags, experiment_id)
    if window is None:
        return
    if exhausted and cursor < window.until_ms and ctx.leading():
        cursor = save_cursor(ctx.client, ctx.watch.model_name, experiment_id, cursor, window.until_ms)
    if cursor >= window.until_ms:
        log.info("backfill_completed", until=now_iso(window.until_ms))
        return
    batch = ctx.config.discover.backfill_batch if ctx.config.discover is not None else 0
    log.info("backfill_progress", batch=batch, cursor=now_iso(cursor), until=now_iso(window.until_ms))
