"""What the probes report: the poll loop's heartbeat, each watch's last poll outcome, and whether
this replica's two dependencies answered: the tracking server and (``ha``) the lock database.

The poller writes it (:func:`after_poll` once per poll); ``/healthz`` and ``/readyz``
(``watcher.service.http``) read it.

Readiness means "this replica can take either role": it is 503 when the lock database is down
(``ha``: a replica that cannot take a lock acts for nothing), or when the tracking server did not
answer its last contact. A standby, whose polls skip every watch, pings the tracking server once
per poll (one cheap request) so that this is known before it has to take over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient

from watcher.config import HaConfig, WatcherConfig
from watcher.engine import TickReport
from watcher.obs import metrics, metrics_console
from watcher.obs.logs import get_logger
from watcher.service.leader import Leader
from watcher.store import experiments
from watcher.store.errors import is_unreachable

log = get_logger("watcher.health")
LOCK_DATABASE = "lock_database"
TRACKING_SERVER = "tracking_server"


@dataclass
class Health:
    """Loop heartbeat and the last poll outcome per watch; written by the poller, read by HTTP."""

    models: list[str]
    liveness_seconds: float
    heartbeat: float = field(default_factory=time.monotonic)
    polling_since: float | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    """model name -> ``ok`` / ``failed`` (its last poll reached the server or not) / ``standby`` /
    ``watch_failed`` (failed on its own: its experiment cannot be read, its gates or writes fail;
    retried on its own backoff, it does not make the replica unready)."""
    tracking_up: bool | None = None
    """Whether the tracking server answered at the last contact (a poll or a standby's ping)."""
    lock_db_up: Callable[[], bool | None] | None = None
    """``ha``: the Leader's ``db_up`` (None before the first contact); None without ``ha``."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_config(cls, config: WatcherConfig, leader: Leader | None = None) -> Health:
        limit = (config.http.liveness_seconds if config.http else None) or max(3 * config.poll_interval_seconds, 30.0)
        health = cls([w.model_name for w in config.watches], limit)
        if leader is not None:
            health.lock_db_up = lambda: leader.db_up
        return health

    def set_models(self, models: list[str]) -> None:
        """The watched models now (discovery adds and drops them); outcomes of dropped ones are forgotten."""
        with self._lock:
            self.models = list(models)
            self.outcomes = {m: ok for m, ok in self.outcomes.items() if m in models}

    def set_tracking_up(self, up: bool) -> None:
        """Whether the tracking server answered at the last contact (``after_poll``)."""
        with self._lock:
            self.tracking_up = up

    def beat(self) -> None:
        """The loop ran (also when it skipped a poll for backoff)."""
        with self._lock:
            self.heartbeat = time.monotonic()

    def poll_started(self) -> None:
        with self._lock:
            self.heartbeat = self.polling_since = time.monotonic()

    def poll_finished(self, report: TickReport | None, failed: bool) -> None:
        """Record a finished poll; ``report`` None with ``failed`` means the tick itself raised."""
        with self._lock:
            self.heartbeat = time.monotonic()
            self.polling_since = None
            if report is None:
                if failed:
                    self.outcomes = dict.fromkeys(self.models, "failed")
                return
            for wr in report.watches:
                self.outcomes[wr.model_name] = ("watch_failed" if wr.failure else "failed" if wr.poll_failed
                                                else "standby" if wr.standby else "ok")

    def alive(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            age = time.monotonic() - self.heartbeat
            polling = self.polling_since is not None
        return polling or age < self.liveness_seconds, {"loop_age_seconds": round(age, 3), "polling": polling}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every watch polled (or stood by) against a reachable server and the lock database answers."""
        with self._lock:
            outcomes = dict(self.outcomes)
            tracking_up = self.tracking_up
        lock_up = self.lock_db_up() if self.lock_db_up is not None else None
        models = list(dict.fromkeys([*self.models, *outcomes]))
        watches = {model: outcomes.get(model, "pending") for model in models}
        down = []
        if self.lock_db_up is not None and lock_up is False:
            down.append(LOCK_DATABASE)
        if tracking_up is False or "failed" in watches.values():
            down.append(TRACKING_SERVER)
        detail: dict[str, Any] = {"watches": watches, "down": down,
                                  TRACKING_SERVER: _state(tracking_up)}
        if self.lock_db_up is not None:
            detail[LOCK_DATABASE] = _state(lock_up)
        ready = not down and all(state in ("ok", "standby", "watch_failed") for state in watches.values())
        return ready, detail


def _state(up: bool | None) -> str:
    return "unknown" if up is None else "up" if up else "down"


def standby_only(report: TickReport | None) -> bool:
    """True when the poll acted for nothing: every watch was skipped for another replica (or no lock)."""
    return report is not None and bool(report.watches) and all(w.standby for w in report.watches)


def after_poll(client: MlflowClient, report: TickReport | None, unreachable: bool,
               health: Health | None = None) -> str:
    """Count a finished poll and set the dependency gauges; returns the poll outcome counted.

    A standby-only poll contacted nothing, so it pings the tracking server (one cheap request)
    and counts as ``standby``, never ``ok``. A poll skipped (``report`` None, not failed) counts nothing.
    """
    up: bool | None
    if standby_only(report):
        try:
            experiments.ping(client)
            up = True
        except Exception as exc:  # noqa: BLE001 - anything means the standby could not take over now
            log.debug("standby_ping_failed", error=f"{type(exc).__name__}: {exc}", unreachable=is_unreachable(exc))
            up = False
        outcome = "standby"
    elif report is None:
        up = False if unreachable else None
        outcome = "error"
    else:
        up = not (report.outage and report.unreachable)
        outcome = "error" if report.outage else "ok"
    metrics.record_poll(outcome == "ok", standby=outcome == "standby")
    if up is not None:
        metrics.set_tracking_up(up)
        if up and (outcome != "error"):
            metrics.mark_successful_poll()
    if health is not None and up is not None:
        health.set_tracking_up(up)
    return outcome


def init_metrics(config: WatcherConfig) -> None:
    """At start-up: every counter label set of every watched model, and every poll outcome, at 0."""
    metrics.init_polls()
    for watch in config.watches:
        metrics.init_model(watch.model_name)
        if watch.scoring is not None:
            metrics_console.init_scoring_model(watch.model_name)


def lock_database_error(ha: HaConfig) -> str | None:
    """``check-config``: connect to the ``ha`` lock database and ``SELECT 1``; the error, or None when it answers."""
    import psycopg

    try:
        with psycopg.connect(ha.lock_url, connect_timeout=ha.connect_timeout_seconds,
                             application_name="registry-watcher-check") as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure: the replica could not take a lock
        return f"{type(exc).__name__}: {exc}"
    return None
