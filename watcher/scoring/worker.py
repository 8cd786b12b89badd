"""Scoring off the poll thread: one worker thread, so a long scoring never delays registration.

The tick records a production change in the history and hands the move it knows
(:class:`~watcher.scoring.runner.ProductionMove`: model, alias, version, its audit entry) to
:meth:`ScoringWorker.submit` (one pending move per model: a model handed over twice is scored
once, for its newest move). The worker re-reads only the model (its tags, and that the alias still
points at the move's version) with its own ``MlflowClient`` and calls
``watcher.scoring.runner.maybe_score``, so the once-per-change guarantee is the same as inline:
the ``watcher.scoring`` tag (keyed on the audit entry's id) and scoring-run adoption survive a
restart. With the ``ha`` block the worker scores only while this replica holds the model's lock.
On SIGTERM :meth:`stop` lets the job in hand finish and drops the rest (the next leader's tick
hands it over again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mlflow import MlflowClient
from structlog.contextvars import bound_contextvars

from watcher.config import WatchConfig, WatcherConfig
from watcher.obs.logs import get_logger
from watcher.scoring.runner import ProductionMove, maybe_score
from watcher.store import registry

log = get_logger("watcher.scoring_worker")


class ScoringWorker:
    """One thread scoring the models handed to it, one at a time, in hand-over order."""

    def __init__(self, client: MlflowClient, config: WatcherConfig,
                 leading: Callable[[str], bool] | None = None,
                 lookup: Callable[[str], WatchConfig | None] | None = None) -> None:
        self.client = client
        self.config = config
        self.leading = leading
        self._pending: list[ProductionMove] = []
        self._cond = threading.Condition()
        self._stop = False
        self.lookup: Callable[[str], WatchConfig | None] = lookup or config.watch_for
        """Model name -> its watch; the daemon gives the effective (discovered) watch set's."""
        self.busy_with: str | None = None
        """The model being scored right now (None when idle)."""
        self.done = 0
        """Jobs finished (scored, adopted, failed or found already scored); for tests and status."""
        self._thread = threading.Thread(target=self._loop, name="scoring-worker", daemon=True)

    def start(self) -> ScoringWorker:
        self._thread.start()
        return self

    def submit(self, move: ProductionMove) -> None:
        """Hand a move over (thread-safe, never blocks; a model already pending keeps its place in
        the queue, with the newest move handed over)."""
        with self._cond:
            if self._stop:
                return
            for i, pending in enumerate(self._pending):
                if pending.model_name == move.model_name:
                    self._pending[i] = move
                    return
            self._pending.append(move)
            log.debug("scoring_queued", model_name=move.model_name, busy_with=self.busy_with)
            self._cond.notify()

    def has(self, model_name: str) -> bool:
        """Whether ``model_name`` is being scored or waits to be (its lock must not be given up)."""
        with self._cond:
            return self.busy_with == model_name or any(m.model_name == model_name for m in self._pending)

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and self.busy_with is None

    def stop(self, timeout: float | None = None) -> None:
        """Finish the job in hand, drop the pending ones, and end the thread."""
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                move = self._pending.pop(0)
                self.busy_with = move.model_name
            try:
                self._handle(move)
            except Exception as exc:  # noqa: BLE001 - the worker survives; the next tick hands it over again
                log.error("scoring_worker_failed", model_name=move.model_name, error=f"{type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self.busy_with = None
                    self.done += 1
                    self._cond.notify_all()

    def _handle(self, move: ProductionMove) -> None:
        """Score the move handed over, unless the alias has moved on since (the tick records the
        new move and hands it over) or this replica no longer leads the model."""
        model_name = move.model_name
        watch = self.lookup(model_name)
        if watch is None or watch.scoring is None:
            return
        if self.leading is not None and not self.leading(model_name):
            log.info("scoring_skipped_not_leader", model_name=model_name)
            return
        with bound_contextvars(model_name=model_name, experiment=watch.experiment):
            model = registry.get_model(self.client, model_name)
            if move.version is None or registry.aliases_of(model).get(move.alias) != move.version:
                return
            maybe_score(self.client, watch, registry.tags_of(model), move.entry, time.time())
