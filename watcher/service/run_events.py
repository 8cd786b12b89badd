"""Run events from the MLflow server plugin (``entity: run, action: finished``): whose watches they wake.

An event names an experiment by id. The watches of that experiment get a tick, nobody else's: the
poller ticks only them (``Poller.request_tick(reason, experiments=...)``). An id not seen before (an
experiment created after the watcher started) is looked up once, through the process's one
experiment cache (``watcher.store.experiments.IDS.name_of``, keyed by tracking URI and id), before
the event is judged to be nobody's. The watcher's own runs (audit trail, scoring) never match a watch: those
experiments may not be watched (config validation), so their events are answered 2xx and ignored.
Events are hints: a lost one costs at most one poll interval, a duplicate or replay one extra,
harmless tick; the poll stays the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mlflow import MlflowClient

from watcher.config import WatchConfig
from watcher.obs.logs import get_logger
from watcher.store import experiments

log = get_logger("watcher.webhooks")


class RunEventRouter:
    """Experiment id -> the watched experiment names it concerns (thread-safe)."""

    def __init__(self, client: Callable[[], MlflowClient], watches: Callable[[], Iterable[WatchConfig]]) -> None:
        self._client = client
        self._watches = watches

    def _name(self, experiment_id: str) -> str | None:
        """The experiment's name (remembered by ``IDS``, the one owner); None when it cannot be read."""
        try:
            return experiments.IDS.name_of(self._client(), experiment_id)
        except Exception as exc:  # noqa: BLE001 - unknown id or server down: the poll is the backstop
            log.debug("run_event_experiment_unknown", experiment_id=experiment_id, error=f"{type(exc).__name__}: {exc}")
            return None

    def experiments_for(self, experiment_id: str) -> list[str]:
        """The watched experiment names the event concerns (empty: nobody's)."""
        name = self._name(experiment_id)
        if name is None:
            return []
        return sorted({w.experiment for w in self._watches() if w.experiment == name})
