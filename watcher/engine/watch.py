"""One watch's candidates in one tick: page through them from the cursor, decide, advance.

The cursor (``watcher.store.cursors``) passes only runs whose side effects all succeeded; it stops
before a run that must be retried. With ``ha``, no write at all (not even the cursor) happens once
the lock is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import islice

from mlflow.entities import Run
from mlflow.entities.model_registry import RegisteredModel

from watcher.engine.onboarding import backfill_step, candidate_floor
from watcher.engine.ownership import registration_refusal
from watcher.engine.report import WatchReport
from watcher.engine.runs import decide_page
from watcher.engine.session import Session, WatchContext
from watcher.engine.verdicts import RunVerdict
from watcher.obs.logs import get_logger
from watcher.store import registry
from watcher.store.cursors import read_cursor, save_cursor
from watcher.store.runs import is_candidate
from watcher.store.search import SearchSupport, candidate_pages

log = get_logger("watcher.engine")


def reconcile_watch(ctx: WatchContext, model: RegisteredModel, session: Session, report: WatchReport) -> None:
    """Decide every undecided candidate of the watch since its cursor, then move the cursor."""
    experiment_id = session.experiments.find(ctx.client, ctx.watch.experiment)
    if experiment_id is None:
        first = ctx.watch.experiment not in session.warned_missing
        session.warned_missing.add(ctx.watch.experiment)
        (log.warning if first else log.debug)("experiment_missing", hint="polling goes on; picked up once created")
        return
    if not ctx.leading():
        return  # the lock is gone: no write at all (the ownership check may claim)
    refusal = registration_refusal(ctx.client, ctx.config, ctx.watch.experiment, experiment_id, model)
    if refusal is not None:  # discovery is stale: the claim moved; no run of this watch is decided
        said = (refusal.experiment, refusal.owner_experiment_id or "")
        if said not in session.refusals_said:
            session.refusals_said.add(said)
            log.warning("watch_refused", experiment_id=refusal.experiment_id, owner_experiment=refusal.owner_experiment,
                        owner_experiment_id=refusal.owner_experiment_id, reason=refusal.reason)
        return
    ctx = replace(ctx, aliases=registry.aliases_of(model),
                  end_times=session.end_times.setdefault(ctx.watch.model_name, {}), facts=session.facts)
    tags = registry.tags_of(model)
    cursor = read_cursor(tags, experiment_id)
    since, batch = candidate_floor(ctx.config, tags, experiment_id, cursor)
    if not batch:
        _drain(ctx, experiment_id, (cursor, since, 0), session.search, report)
        return
    moved, exhausted = _drain(ctx, experiment_id, (cursor, since, batch), session.search, report)
    backfill_step(ctx, experiment_id, moved, exhausted, tags)


def _drain(ctx: WatchContext, experiment_id: str, start: tuple[int, int, int], search: SearchSupport,
           report: WatchReport) -> tuple[int, bool]:
    """Page through the candidates from ``since`` (the cursor minus the overlap, never before the
    watch's onboarding window), deciding each page, moving the cursor. ``start`` is (cursor, since,
    batch): a batch (a backfill) takes one page of at most that many runs. Returns the cursor and
    whether every candidate was handed out (no page was cut short)."""
    config, leading = ctx.config, ctx.leading
    cursor, since, batch = start
    size = min(config.page_size, batch or config.page_size)
    advanced, exhausted = cursor, True
    pages = candidate_pages(ctx.client, experiment_id, since, size, search, ctx.watch.run_filter)
    # a backfill takes one bounded batch per tick: the rest of the fleet goes on
    for page in islice(pages, 1) if batch else pages:
        exhausted = len(page) < size
        todo = [run for run in page if is_candidate(run)]
        if todo and not leading():
            return cursor, False  # the lock is gone: no write at all, not even the cursor
        if ctx.stop.is_set():
            exhausted = False
            break
        decided = decide_page(ctx, todo, report)
        if decided.staging is not None:  # the next page sees the alias where this one left it
            ctx = replace(ctx, aliases={**ctx.aliases, decided.staging.alias: decided.staging.version})
        advanced, blocked = _passed(page, {v.run_id: v for v in decided.verdicts}, advanced)
        if blocked:
            return _save_if_leading(ctx, experiment_id, cursor, advanced), False
        if advanced > cursor and not leading():
            return cursor, False
        cursor = _save(ctx, experiment_id, cursor, advanced)
    return _save_if_leading(ctx, experiment_id, cursor, advanced), exhausted


def _save_if_leading(ctx: WatchContext, experiment_id: str, old: int, new: int) -> int:
    """The cursor saved while this replica holds the lock (always without ``ha``); else as it was."""
    return _save(ctx, experiment_id, old, new) if ctx.leading() else old


def _passed(page: Sequence[Run], verdicts: Mapping[str, RunVerdict], advanced: int) -> tuple[int, bool]:
    """The cursor past the page's runs up to the first one not settled (whose side effects did not
    all succeed); True when it stopped there."""
    for run in page:
        verdict = verdicts.get(run.info.run_id)
        if verdict is not None and not verdict.settled:
            return advanced, True
        advanced = max(advanced, run.info.end_time or 0)
    return advanced, False


def _save(ctx: WatchContext, experiment_id: str, old: int, new: int) -> int:
    if new > old:
        log.debug("cursor_advanced", experiment_id=experiment_id, end_time=new)
    return save_cursor(ctx.client, ctx.watch.model_name, experiment_id, old, new)
