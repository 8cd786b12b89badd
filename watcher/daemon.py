"""The thin loop: APScheduler calls ``reconcile_once`` on an interval; nothing else lives here.

* ``max_instances=1`` and ``coalesce=True``: a slow tick is never overlapped or queued up.
* A failed poll (server down, 5xx, timeout) is a ``poll_failed`` event; the next ticks are skipped
  until an exponential backoff has passed. The daemon never exits on a transient error.
* An unreachable tracking server is an outage, said once: ``tracking_server_unreachable`` (error)
  at its start, ``tracking_server_recovered`` (info, ``outage_seconds``) at its end; the failed
  polls in between are ``poll_failed`` at debug.
* With the ``ha`` block a :class:`~watcher.leader.Leader` gates each watch; scoring runs on a
  :class:`~watcher.scoring_worker.ScoringWorker` thread, never on the poll thread.
* SIGTERM/SIGINT set a stop event: the tick finishes the run in hand, then the process exits 0.
* ``Poller.request_tick(reason)`` (a webhook delivery, a tick that found work) starts a tick at
  once: right away when idle, or straight after the tick in hand, never two at a time.
* With the ``http`` block, ``watcher.http`` serves health, readiness, metrics and the MLflow
  webhook receiver from a thread; the poller feeds its ``Health``, webhooks call ``request_tick``.
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
from watcher.client import make_client
from watcher.errors import is_unreachable
from watcher.http import Health, HttpServer, build_app
from watcher.leader import Leader
from watcher.logs import get_logger
from watcher.report import TickReport
from watcher.scoring_worker import ScoringWorker

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
    leader: Leader | None = None
    """The ``ha`` lock holder; None acts on every watch (one replica)."""
    scorer: ScoringWorker | None = None
    """The scoring thread; None scores inline in the tick (``once`` and most tests)."""
    outage_since: float | None = None
    """Monotonic time of the first failed poll of a tracking-server outage in progress."""
    _pending: threading.Event = field(default_factory=threading.Event)
    health: Health | None = None
    """Set by the daemon when ``http`` is on: the loop heartbeat and per-watch poll outcome."""

    def request_tick(self, reason: str) -> None:
        """Ask for a tick as soon as possible; thread-safe, and requests during a tick coalesce."""
        log.debug("tick_requested", reason=reason)
        self._pending.set()
        if self.kick is not None:
            self.kick()

    def poll(self) -> TickReport | None:
        """One scheduled poll, repeated while ticks were requested during it."""
        if self.health is not None:
            self.health.beat()
        report = self._poll_once()
        while self._pending.is_set() and not self.stop.is_set() and report is not None and not report.poll_failed:
            again = self._poll_once()
            report = report if again is None else report.then(again)
        return report

    def _poll_once(self) -> TickReport | None:
        """One poll; returns None when skipped for backoff or shutdown."""
        self._pending.clear()
        if self.stop.is_set() or time.monotonic() < self.backoff.not_before:
            return None
        if self.health is not None:
            self.health.poll_started()
        try:
            report = reconcile_once(self.client, self.config, session=self.session, stop=self.stop,
                                    leader=self.leader, scorer=self.scorer.submit if self.scorer else None)
        except Exception as exc:  # noqa: BLE001 - the loop survives anything but shutdown
            report = None
            error = f"{type(exc).__name__}: {exc}"
            unreachable = is_unreachable(exc)
        else:
            error = "; ".join(e for w in report.watches if w.poll_failed for e in w.errors)
            unreachable = report.unreachable
        finally:
            if self.health is not None:
                self.health.poll_finished(report, failed=report is None and not self.stop.is_set())
        metrics.record_poll(report is not None and not report.poll_failed)
        if report is not None and not report.poll_failed:
            if self.outage_since is not None:
                log.info("tracking_server_recovered", outage_seconds=round(time.monotonic() - self.outage_since, 1),
                         failed_polls=self.backoff.failures)
                self.outage_since = None
            elif self.backoff.failures:
                log.info("poll_recovered", after_failures=self.backoff.failures)
            self.backoff = Backoff()
            self._summary(report)
            if any(w.registered or w.rejected for w in report.watches):
                self._pending.set()  # work found: look again at once for runs that ended meanwhile
            return report
        self.backoff.failures += 1
        delay = self.config.retry.delay(self.backoff.failures)
        self.backoff.not_before = time.monotonic() + delay
        if unreachable and self.outage_since is None:
            self.outage_since = time.monotonic()
            log.error("tracking_server_unreachable", error=error, retry_in_seconds=delay,
                      hint="polling goes on with backoff; nothing is lost, runs are picked up on return")
        level = log.debug if unreachable else (log.error if self.backoff.failures == 1 else log.warning)
        level("poll_failed", error=error, consecutive_failures=self.backoff.failures, retry_in_seconds=delay)
        return report

    @staticmethod
    def _summary(report: TickReport) -> None:
        registered = sum(len(w.registered) for w in report.watches)
        rejected = sum(len(w.rejected) for w in report.watches)
        scored = sum(len(w.scored) for w in report.watches)
        queued = sum(len(w.queued) for w in report.watches)
        level = log.info if registered or rejected or scored or queued else log.debug
        level("poll_completed", registered=registered, rejected=rejected, scored=scored, scoring_queued=queued,
              ok=report.ok)


def run_daemon(client: MlflowClient, config: WatcherConfig) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 on a clean stop)."""
    leader = make_leader(config)
    poller = Poller(client, config, leader=leader)

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
    server = _start_http(poller, config)
    if server is False:
        if leader is not None:
            leader.close()
        return 1
    if any(w.scoring is not None for w in config.watches):
        own_client = make_client(config)  # the worker's own client, as configured for the daemon
        poller.scorer = ScoringWorker(own_client, config, leading=leader.holds if leader else None).start()
    log.info("watcher_started", tracking_uri=config.tracking_uri, watches=len(config.watches),
             poll_interval_seconds=config.poll_interval_seconds, ha=config.ha is not None,
             http=config.http is not None)
    scheduler.start()
    try:
        while not poller.stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        if poller.scorer is not None:
            poller.scorer.stop()  # the scoring in hand finishes; its record is written before we exit
        if leader is not None:
            leader.close()
        if server is not None:
            server.stop()
        # Spark scoring engine: stop its session (JVM and workers), if one was ever started.
        spark_scoring.stop_session()
    log.info("watcher_stopped")
    return 0


def make_leader(config: WatcherConfig) -> Leader | None:
    """The replica's :class:`Leader` when the config has an ``ha`` block, else None."""
    return Leader(config.ha) if config.ha is not None else None


def _start_http(poller: Poller, config: WatcherConfig) -> HttpServer | None | bool:
    """Serve the ``http`` block, if any; False when it cannot listen (the daemon then exits 1)."""
    if config.http is None:
        return None
    from watcher.webhooks import Receiver

    poller.health = Health.for_config(config)
    receiver = Receiver(config, poller.request_tick) if config.http.webhook_secret is not None else None
    server = HttpServer(build_app(poller.health, config.http, receiver), config.http)
    try:
        server.start()
    except RuntimeError as exc:
        log.error("http_failed", error=str(exc))
        return False
    log.info("http_listening", host=config.http.host, port=server.port, webhooks=receiver is not None)
    return server


def _utcnow():  # noqa: ANN202 - datetime
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)

