"""The poll loop's one job: call the tick, log its summary, keep the backoff and the outage state.

* A failed poll (server down, 5xx, timeout) is a ``poll_failed`` event; the next ticks are skipped
  until an exponential backoff has passed.
* An unreachable tracking server is an outage, said once: ``tracking_server_unreachable`` (error)
  at its start, ``tracking_server_recovered`` (info, ``outage_seconds``) at its end; the failed
  polls in between are ``poll_failed`` at debug.
* :meth:`Poller.request_tick` (a webhook delivery, a tick that found work) starts a tick at once:
  right away when idle, or straight after the tick in hand, never two at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlflow import MlflowClient

from watcher.config import WatcherConfig
from watcher.engine import Session, TickReport, reconcile_once
from watcher.obs.logs import get_logger
from watcher.scoring.worker import ScoringWorker
from watcher.service.health import Health, after_poll
from watcher.service.leader import Leader
from watcher.store.errors import is_unreachable

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
    _webhook_requests: int = 0
    """Verified webhook deliveries that asked for a tick since the last tick started."""
    _webhook_lock: threading.Lock = field(default_factory=threading.Lock)
    health: Health | None = None
    """Set by the daemon when ``http`` is on: the loop heartbeat and per-watch poll outcome."""

    def request_tick(self, reason: str) -> None:
        """Ask for a tick as soon as possible; thread-safe, and requests during a tick coalesce."""
        log.debug("tick_requested", reason=reason)
        if reason.startswith("webhook:"):
            with self._webhook_lock:
                self._webhook_requests += 1
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
        with self._webhook_lock:
            deliveries, self._webhook_requests = self._webhook_requests, 0
        if deliveries:  # one line per tick however many deliveries asked for it (each is logged at debug)
            log.info("webhook_tick", deliveries=deliveries)
        if self.health is not None:
            self.health.poll_started()
        report: TickReport | None = None
        try:
            report = reconcile_once(self.client, self.config, session=self.session, stop=self.stop,
                                    leader=self.leader, scorer=self.scorer.submit if self.scorer else None)
        except Exception as exc:  # noqa: BLE001 - the loop survives anything but shutdown
            error = f"{type(exc).__name__}: {exc}"
            unreachable = is_unreachable(exc)
        else:
            error = "; ".join(e for w in report.watches if w.poll_failed for e in w.errors)
            unreachable = report.unreachable
        finally:
            if self.health is not None:
                self.health.poll_finished(report, failed=report is None and not self.stop.is_set())
        after_poll(self.client, report, unreachable, self.health)
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
