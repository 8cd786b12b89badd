"""Around each tick: which watches it covers, and which failed on their own (one team's problem
stays that team's).

Before a tick (:meth:`Bulkheads.before`):

* the effective watch set is synced into the process's
  :class:`~watcher.service.watch_states.WatchStates` (a new watch starts ``ok``);
* the watched experiments are checked for readability (``watcher.store.readability``): a new
  watch's at once, every watch's each ``bulkheads.readability_check_seconds``. This is how a
  denial that MLflow's batched ``search_runs`` hides (200, no runs) is seen. One that cannot be
  read fails its watch;
* a failed watch is held out of the tick until its own backoff (``bulkheads.retry``) has passed;
  then it is probed on its own: one ``get_experiment`` for an unreadable experiment (still
  unreadable: held out again, for longer), or the watch is simply retried in this tick when it
  failed for its gates or its writes.

After a tick (:meth:`Bulkheads.after`): a watch whose report carries a ``failure`` is failed
(``watch_failed``, once); one that polled well recovers (``watch_recovered``). An outage (the
server unreachable) changes no watch's state: it is the fleet's, handled by the backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import TickReport, WatchReport
from watcher.obs.logs import get_logger
from watcher.service.watch_set import WatchSet
from watcher.service.watch_states import WatchState, WatchStates, watch_key
from watcher.store import readability
from watcher.store.experiments import ExperimentIds

log = get_logger("watcher.daemon")


def held_report(watch: WatchConfig, state: WatchState) -> WatchReport:
    """The report of a failed watch held out of this tick (it says why; nothing was done)."""
    reason = state.reason or "failed"
    return WatchReport(watch.model_name, watch.experiment, errors=[reason], failure=reason,
                       failure_kind=state.kind, experiment_id=state.experiment_id)


def refused_states(watches: WatchSet) -> list[WatchState]:
    """The refused watches (``WatchSet.refused``: another experiment owns the model, or the tag
    cannot make a watch) as states."""
    return [WatchState(watch_key(r.experiment, r.model_name), r.model_name, r.experiment, r.experiment_id,
                       "refused", r.reason) for r in watches.refused]


class Bulkheads:
    """One config's per-watch isolation over the process's :class:`WatchStates`."""

    def __init__(self, states: WatchStates, config: WatcherConfig, ids: ExperimentIds,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._states = states
        self._config = config
        self._ids = ids
        self._clock = clock
        self._check_at = 0.0
        """Monotonic time of the next readability check of every watch (0: at the next tick)."""

    def before(self, client: MlflowClient, watches: Sequence[WatchConfig], full: bool = True
               ) -> tuple[list[WatchConfig], list[WatchReport]]:
        """The watches this tick covers and a report for each failed one held out. ``full``: a tick
        of every watch (the effective set is synced; a scoped tick covers only ``watches``).
        An unreachable server raises (the poll fails as an outage)."""
        by_key = {watch_key(w.experiment, w.model_name): w for w in watches}
        new = self._states.sync(watches) if full else []
        self._check_readable(client, by_key, new, full)
        covered: list[WatchConfig] = []
        held: list[WatchReport] = []
        for key, watch in by_key.items():
            state = self._states.get(key)
            if state is None or state.state != "failed":
                covered.append(watch)
            elif not self._states.probe_due(key):
                held.append(held_report(watch, state))
            elif state.kind == "unreadable" and not self._probe(client, key, watch, state):
                held.append(held_report(watch, self._states.get(key) or state))
            else:
                covered.append(watch)  # its probe passed, or it is retried alone: this tick says
        return covered, held

    def after(self, report: TickReport | None, held: Sequence[WatchReport]) -> None:
        """A tick's outcome per watch (``held``: the reports of watches held out, left as they are)."""
        if report is None:
            return
        retry = self._config.bulkheads.retry
        for wr in report.watches:
            if any(wr is h for h in held) or wr.standby:
                continue
            key = watch_key(wr.experiment, wr.model_name)
            if wr.failure:
                self._states.fail(key, wr.failure, wr.failure_kind or "error", retry, wr.experiment_id)
            elif not wr.poll_failed:
                self._states.succeed(key, wr.experiment_id)

    def _probe(self, client: MlflowClient, key: str, watch: WatchConfig, state: WatchState) -> bool:
        """One ``get_experiment`` of a failed watch's experiment: True when it can be read again."""
        exp_id = state.experiment_id or self._ids.cached(client, watch.experiment)
        reason = readability.probe_experiment(client, watch.experiment, exp_id)
        if reason is None:
            return True
        self._states.fail(key, reason, "unreadable", self._config.bulkheads.retry, exp_id)
        return False

    def _check_readable(self, client: MlflowClient, by_key: dict[str, WatchConfig], new: Sequence[str], full: bool) -> None:
        """Every watch's experiment when the interval has passed (at a tick of every watch), else the new ones'."""
        now = self._clock()
        due = full and now >= self._check_at
        if due:
            self._check_at = now + self._config.bulkheads.readability_check_seconds
        targets: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        for key in by_key if due else new:
            state = self._states.get(key)
            watch = by_key.get(key)
            exp_id = self._ids.cached(client, watch.experiment) if watch is not None else None
            if state is None or state.state == "failed" or watch is None or exp_id is None:
                continue  # failed: probed on its own; id unknown: the tick's own lookup checks it
            targets.setdefault(exp_id, []).append(key)
            names[exp_id] = watch.experiment
        if not targets:
            return
        bad = readability.unreadable(client, names)
        for exp_id, reason in bad.items():
            for key in targets[exp_id]:
                self._states.fail(key, reason, "unreadable", self._config.bulkheads.retry, exp_id)
        log.debug("readability_checked", checked=len(names), unreadable=len(bad))
