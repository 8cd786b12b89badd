"""Phases 2 and 3 of a page: the staging move, then each passing run's decision.

``stage`` moves the staging alias once per page, forward only, to the newest passing run: the
store plans the move (:func:`watcher.store.registry.forward_move`, None when the alias holds a
run that ended later), then the engine begins its audit intent, sets the alias, says
``staging_alias_moved`` and finishes the intent, in that order. ``finish`` writes a passing
run's decision tags, the commit marker, after the alias, so a crash before it is repaired by the
next tick without a duplicate.
"""

from __future__ import annotations

import time
from dataclasses import replace

from structlog.contextvars import bound_contextvars

from watcher.engine.aliases import begin_own_move
from watcher.engine.facts import decided
from watcher.engine.lineage import gates_json
from watcher.engine.session import WatchContext
from watcher.engine.verdicts import RunVerdict, retry_or_error
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store import audit, registry
from watcher.store import runs as run_store
from watcher.store.registry import ForwardMove

log = get_logger("watcher.engine")


def stage(ctx: WatchContext, newest: RunVerdict) -> ForwardMove | None:
    """Phase 2: move staging (forward only) to the newest passing run; the move made, or None."""
    client, watch, run, version = ctx.client, ctx.watch, newest.run, newest.version
    assert version is not None
    new, end_time = str(version.version), run.info.end_time or 0
    with bound_contextvars(run_id=run.info.run_id, version=new):
        current = ctx.aliases.get(watch.staging_alias)
        move = registry.forward_move(watch.staging_alias, new, end_time, current, _end_time(ctx, current, new))
        if move is None:
            return None
        intent = begin_own_move(client, ctx.config.audit_experiment, watch, watch.staging_alias, new, move.previous,
                                "stage", f"run {run.info.run_id} passed the gates")
        ctx.crash("after_intent")
        registry.set_alias(client, watch.model_name, watch.staging_alias, new)
        ctx.facts(intent)  # committed: the alias points at its version (outgoing events, at once)
        ctx.end_times[new] = end_time
        ctx.crash("after_alias")
        # the alias request returned: said at once, then the intent is closed
        log.info("staging_alias_moved", alias=watch.staging_alias, previous_version=move.previous or None)
        metrics.observe_run_to_staging(time.time() - end_time / 1000)
        audit.finish_intent(client, intent)
    return move


def _end_time(ctx: WatchContext, current: str | None, new: str) -> int | None:
    """The end time of the run the alias holds now (the session's memo, else one read), when it matters."""
    if current is None or str(current) == new:
        return None
    if str(current) not in ctx.end_times:
        ctx.end_times[str(current)] = registry.run_end_time(ctx.client, ctx.watch.model_name, str(current))
    return ctx.end_times[str(current)]


def finish(ctx: WatchContext, verdict: RunVerdict, move: ForwardMove | None) -> RunVerdict:
    """Phase 3 for one passing run: its decision tags (the commit marker) and its canonical line."""
    watch, run, version = ctx.watch, verdict.run, verdict.version
    assert version is not None
    if not ctx.leading():
        return replace(verdict, state="retry")  # the lock is gone: the new leader repairs
    with bound_contextvars(run_id=run.info.run_id, version=str(version.version)):
        try:
            written = run_store.record_decision(ctx.client, run.info.run_id, "registered", gates_json(verdict.results),
                                                version=str(version.version), crash=ctx.crash,
                                                model_name=watch.model_name)
            decided(ctx.facts, run, written)
        except Exception as exc:  # noqa: BLE001 - the version and alias stand; the decision is retried
            return replace(retry_or_error(ctx, verdict, exc), settled=False)  # counted, never reported as registered
        log.info("run_registered", created=verdict.created, staging_moved=move is not None,
                 run_name=run.info.run_name, alias=watch.staging_alias if move is not None else None)
    return replace(verdict, state="registered", settled=True)
