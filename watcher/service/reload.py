"""Reload on SIGHUP: re-read the config file between ticks, keep what did not change.

The signal handler only sets a flag and asks for a poll (:meth:`Reloader.request`); the process
(``watcher.service.process``) calls :meth:`Reloader.apply_pending` at the start of its next poll,
so the tick in hand finishes under the config it started with and no two ticks ever overlap. The
process rebuilds its parts from the new config (``Process`` in ``watcher.service.process``).

* A valid file takes effect: ``config_reloaded`` (info, ``watches`` = the configured watches,
  ``changed`` = the top-level keys that differ). The poll interval is rescheduled, the discovery
  searches again at once, the tracking client is rebuilt when ``tracking_uri``/``registry_uri``
  changed, the scoring worker takes the new watches. The HTTP server is restarted only when the
  ``http`` block changed, the lock connection only when the ``ha`` block changed (its locks are
  released between ticks and taken again by whoever is due). ``log`` changes need a restart.
* An invalid file is ``config_reload_failed`` (error, ``error`` = the field-located errors exactly
  as ``check-config`` prints them) and the old config stays in force. The daemon never stops on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from watcher.config import ConfigError, WatcherConfig, load_config
from watcher.obs.logs import get_logger

log = get_logger("watcher.daemon")


def changed_blocks(old: WatcherConfig, new: WatcherConfig) -> list[str]:
    """The top-level keys whose values differ (``http``, ``ha``, ``watches``, ...)."""
    return [name for name in type(old).model_fields if getattr(old, name) != getattr(new, name)]


class Reloader:
    """A pending SIGHUP for one config file; the process applies it (it owns the parts)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._pending = threading.Event()

    def request(self) -> None:
        """From the signal handler: remember the reload (applied before the next tick)."""
        self._pending.set()

    def apply_pending(self, current: WatcherConfig, apply: Callable[[WatcherConfig, list[str]], None]) -> bool:
        """Between ticks: read the file and, when valid, ``apply(new, changed)`` over ``current``;
        True when a new config took effect."""
        if not self._pending.is_set():
            return False
        self._pending.clear()
        try:
            new = load_config(self._path)
        except ConfigError as exc:
            log.error("config_reload_failed", error=str(exc), config=str(self._path),
                      hint="the previous config stays in force; fix the file and send SIGHUP again")
            return False
        changed = changed_blocks(current, new)
        try:
            apply(new, changed)
        except Exception as exc:  # noqa: BLE001 - a part that could not restart: said, and the daemon goes on
            log.error("config_reload_failed", error=f"{type(exc).__name__}: {exc}", config=str(self._path),
                      hint="the new config is in force for polling; the part named failed to restart")
            return False
        log.info("config_reloaded", watches=len(new.watches), changed=changed, config=str(self._path))
        return True
