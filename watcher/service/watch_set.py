"""The effective watch set: the configured watches, then those discovered by experiment tag.

With ``discover``, experiments are searched for the tag every ``discover.interval_seconds`` (before
a tick, never during one). A failed search keeps the watches found before (``discovery_failed``).
A :class:`WatchSet` is built per config: a reload builds a new one, which searches again at once
(profiles or the tag may have changed), over the same :class:`~watcher.engine.discovery.Discovery`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.discovery import Discovery
from watcher.engine.ownership import Refusal
from watcher.obs.logs import get_logger
from watcher.store.errors import is_unreachable

log = get_logger("watcher.daemon")


class WatchSet:
    """The watches of one config and the discovery schedule; ``found`` outlives a reload."""

    def __init__(self, config: WatcherConfig, found: Discovery | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._found = found if found is not None else Discovery()
        self._clock = clock
        self._search_at = 0.0
        """Monotonic time of the next experiment search (0: at the next refresh)."""

    @property
    def found(self) -> Discovery:
        """The watches found by experiment tag (empty without ``discover``)."""
        return self._found

    @property
    def refused(self) -> tuple[Refusal, ...]:
        """The tagged experiments not watched now, each with its reason: another experiment feeds
        the model (``kind`` ``ownership``, ``watch_refused``) or the tag cannot make a watch
        (``invalid``: an empty tag, an unknown profile, ...). Empty without ``discover``."""
        return self._found.refused_watches

    def watches(self) -> list[WatchConfig]:
        """The effective watch set: configured, then discovered (an explicit entry wins)."""
        return self._found.watches(self._config)

    def watch_for(self, model_name: str) -> WatchConfig | None:
        """The first effective watch of ``model_name`` (the scoring worker's lookup)."""
        return next((w for w in self.watches() if w.model_name == model_name), None)

    def refresh(self, client: MlflowClient, force: bool = False) -> bool:
        """Search experiments for the discovery tag when due (or ``force``); True when a search
        succeeded. An error keeps the watches found before."""
        discover = self._config.discover
        if discover is None:
            if self._found.found:
                self._found.refresh(client, self._config, write=True)  # the block was removed: drop them
            return False
        if not force and self._clock() < self._search_at:
            return False
        self._search_at = self._clock() + discover.interval_seconds
        try:
            self._found.refresh(client, self._config, write=True)
        except Exception as exc:  # noqa: BLE001 - the loop survives; the watches found before stay
            (log.debug if is_unreachable(exc) else log.warning)(
                "discovery_failed", error=f"{type(exc).__name__}: {exc}",
                hint="the watches found before stay in force; searched again next interval")
            return False
        return True
