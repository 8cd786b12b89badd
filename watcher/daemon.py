"""The thin loop: APScheduler calls ``reconcile_once`` on an interval; nothing else lives here.

* ``max_instances=1`` and ``coalesce=True``: a slow tick is never overlapped or queued up.
* A failed poll (server down, 5xx, timeout) is an ``error`` event; the next ticks are skipped
  until an exponential backoff has passed. The daemon never exits on a transient error.
* SIGTERM/SIGINT set a stop event: the tick finishes the run in hand, then the process exits 0.
* ``Poller.request_tick(reason)`` (a webhook delivery, a tick that found work) starts a tick at
  once: right away when idle, or straight after the tick in hand, never two at a time.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from mlflow import MlflowClient

from handlers import spark_scoring
from watcher.config import WatcherConfig
from watcher.engine import Session, reconcile_once
from watcher import metrics
from watcher.logs import get_logger
from watcher.report import TickReport

log = get_logger("watcher.daemon")


@dataclass
class Backoff:
    """Consecutive poll failures and when the next poll may run (monotonic seconds)."""

    failures: int = 0
    not_before: float = 0.0


@dataclass
class Poller:
    """Calls the tick, logs its summary and keeps the backoff; used by the scheduler job."""

    client: MlflowClient
    config: WatcherConfig
    stop: threading.Event = field(default_factory=threading.Event)
    session: Session = field(default_factory=Session)
    backoff: Backoff = field(default_factory=Backoff)
    kick: Callable[[], None] | None = None
    """Set by the daemon: makes the scheduler run :meth:`poll` now (None outside the daemon)."""
    _pending: threading.Event = field(default_factory=threading.Event)

    def request_tick(self, reason: str) -> None:
        """Ask for a tick as soon as possible; thread-safe, and requests during a tick coalesce."""
        log.debug("tick_requested", reason=reason)
        self._pending.set()
        if self.kick is not None:
            self.kick()

    def poll(self) -> TickReport | None:
        """One scheduled poll, repeated while ticks were requested during it."""
        report = self._poll_once()
        while self._pending.is_set() and not self.stop.is_set() and report is not None and not report.poll_failed:
            report = self._poll_once()
        return report

    def _poll_once(self) -> TickReport | None:
        """One poll; returns None when skipped for backoff or shutdown."""
        self._pending.clear()
        if self.stop.is_set() or time.monotonic() < self.backoff.not_before:
            return None
        try:
            report = reconcile_once(self.client, self.config, session=self.session, stop=self.stop)
        except Exception as exc:  # noqa: BLE001 - the loop survives anything but shutdown
            report = None
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = "; ".join(e for w in report.watches if w.poll_failed for e in w.errors)
        metrics.record_poll(report is not None and not report.poll_failed)
        if report is not None and not report.poll_failed:
            if self.backoff.failures:
                log.info("poll_recovered", after_failures=self.backoff.failures)
            self.backoff = Backoff()
            self._summary(report)
            return report
        self.backoff.failures += 1
        delay = self.config.retry.delay(self.backoff.failures)
        self.backoff.not_before = time.monotonic() + delay
        log.error("poll_failed", error=error, consecutive_failures=self.backoff.failures, retry_in_seconds=delay)
        return report

    @staticmethod
    def _summary(report: TickReport) -> None:
        registered = sum(len(w.registered) for w in report.watches)
        rejected = sum(len(w.rejected) for w in report.watches)
        scored = sum(len(w.scored) for w in report.watches)
        level = log.info if registered or rejected or scored else log.debug
        level("poll_completed", registered=registered, rejected=rejected, scored=scored, ok=report.ok)


def run_daemon(client: MlflowClient, config: WatcherConfig) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 on a clean stop)."""
    poller = Poller(client, config)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        poller.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(timezone="UTC")
    job = scheduler.add_job(poller.poll, IntervalTrigger(seconds=config.poll_interval_seconds), id="poll",
                            max_instances=1, coalesce=True, misfire_grace_time=None,
                            next_run_time=_utcnow())
    poller.kick = lambda: job.modify(next_run_time=_utcnow())
    log.info("watcher_started", tracking_uri=_redact(config.tracking_uri), watches=len(config.watches),
             poll_interval_seconds=config.poll_interval_seconds)
    scheduler.start()
    try:
        while not poller.stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        # Spark scoring engine: stop its session (JVM and workers), if one was ever started.
        spark_scoring.stop_session()
    log.info("watcher_stopped")
    return 0


def _utcnow():  # noqa: ANN202 - datetime
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _redact(uri: str) -> str:
    """Hide a password in a tracking URI before logging it."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else uri
    return uri
