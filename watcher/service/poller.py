"""The poll loop's one job: call the tick, log its summary, keep the backoff and the outage state.

* A failed poll (server down, 5xx, timeout) is a ``poll_failed`` event; the next ticks are skipped
  until an exponential backoff has passed.
* An unreachable tracking server is an outage, said once: ``tracking_server_unreachable`` (error)
  at its start, ``tracking_server_recovered`` (info, ``outage_seconds``) at its end; the failed
  polls in between are ``poll_failed`` at debug.
* :meth:`Poller.request_tick` (a webhook delivery, a tick that found work) starts a tick at once:
  right away when idle, or straight after the tick in hand, never two at a time.
* With ``discover``, experiments are searched for the tag every ``discover.interval_seconds``
  (before a tick, never during one); :meth:`Poller.watches` is the effective watch set. A failed
  search keeps the watches found before (``discovery_failed``).
* A reload (SIGHUP, ``watcher.service.reload``) is applied at the start of a poll, so the tick in
  hand always finishes under the config it started with.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import Session, TickReport, reconcile_once
from watcher.engine.discovery import Discovery
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
    discovery: Discovery = field(default_factory=Discovery)
    """The watches found by experiment tag (``discover``); empty without it."""
    discover_at: float = 0.0
    """Monotonic time of the next experiment search (0: at the next poll)."""
    before_poll: Callable[[], object] | None = None
    """Set by the daemon: applies a pending reload between ticks (None outside the daemon)."""
    _scope: set[str] | None = None
    """Experiments whose watches a requested tick is for (run events); None: every watch."""
    _scope_lock: threading.Lock = field(default_factory=threading.Lock)
    _full_due: float = 0.0
    """Monotonic time the next tick of every watch is due; before it, a run event ticks only its watches."""

    def watches(self) -> list[WatchConfig]:
        """The effective watch set: configured, then discovered (an explicit entry wins)."""
        return self.discovery.watches(self.config)

    def watch_for(self, model_name: str) -> WatchConfig | None:
        """The first effective watch of ``model_name`` (the scoring worker's lookup)."""
        return next((w for w in self.watches() if w.model_name == model_name), None)

    def discover(self, force: bool = False) -> None:
        """Search experiments for the discovery tag when due (or ``force``); errors keep the old set."""
        if self.config.discover is None:
            if self.discovery.found:
                self.discovery.refresh(self.client, self.config)  # the block was removed: drop them
            return
        if not force and time.monotonic() < self.discover_at:
            return
        self.discover_at = time.monotonic() + self.config.discover.interval_seconds
        try:
            self.discovery.refresh(self.client, self.config)
        except Exception as exc:  # noqa: BLE001 - the loop survives; the watches found before stay
            (log.debug if is_unreachable(exc) else log.warning)(
                "discovery_failed", error=f"{type(exc).__name__}: {exc}",
                hint="the watches found before stay in force; searched again next interval")
            return
        self.session.experiment_ids.update(self.discovery.experiment_ids())

    def request_tick(self, reason: str, experiments: Iterable[str] | None = None) -> None:
        """Ask for a tick as soon as possible; thread-safe, and requests during a tick coalesce.

        ``experiments`` (a run event) limits it to the watches of those experiments, unless a tick of
        every watch is due or also asked for."""
        names = None if experiments is None else set(experiments)
        log.debug("tick_requested", reason=reason, experiments=sorted(names) if names is not None else None)
        if reason.startswith("webhook:"):
            with self._webhook_lock:
                self._webhook_requests += 1
        self._request(names)
        if self.kick is not None:
            self.kick()

    def _request(self, names: set[str] | None) -> None:
        with self._scope_lock:
            if not self._pending.is_set():
                self._scope = names
            elif self._scope is not None:
                self._scope = None if names is None else self._scope | names
            self._pending.set()

    def asked_for(self, experiment: str) -> bool:
        """Whether a run event for ``experiment`` is waiting (it came during the tick in hand)."""
        with self._scope_lock:
            return self._pending.is_set() and self._scope is not None and experiment in self._scope

    def _take_scope(self) -> set[str] | None:
        """What the next tick covers (None: every watch), and clear the request."""
        with self._scope_lock:
            scope = self._scope if self._pending.is_set() else None
            self._pending.clear()
            self._scope = None
        return None if time.monotonic() >= self._full_due else scope

    def poll(self) -> TickReport | None:
        """One scheduled poll, repeated while ticks were requested during it."""
        if self.health is not None:
            self.health.beat()
        if self.before_poll is not None:
            self.before_poll()
        report = self._poll_once()
        while self._pending.is_set() and not self.stop.is_set() and report is not None and not report.poll_failed:
            again = self._poll_once()
            report = report if again is None else report.then(again)
        return report

    def _poll_once(self) -> TickReport | None:
        """One poll; returns None when skipped for backoff or shutdown."""
        scope = self._take_scope()
        if self.stop.is_set() or time.monotonic() < self.backoff.not_before:
            return None
        with self._webhook_lock:
            deliveries, self._webhook_requests = self._webhook_requests, 0
        if deliveries:  # one line per tick however many deliveries asked for it (each is logged at debug)
            log.info("webhook_tick", deliveries=deliveries)
        if self.health is not None:
            self.health.poll_started()
        report: TickReport | None = None
        self.discover()
        watches = self.watches()
        if scope is None:
            self._full_due = time.monotonic() + self.config.poll_interval_seconds * 0.9
            self._share_models(watches)
            if self.health is not None:
                self.health.set_models([w.model_name for w in watches])
        else:
            watches = [w for w in watches if w.experiment in scope]
        try:
            report = reconcile_once(self.client, self.config, session=self.session, stop=self.stop,
                                    leader=self.leader, scorer=self.scorer.submit if self.scorer else None,
                                    watches=watches, scan=scope is None, asked=self.asked_for)
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
            if any(w.registered or w.rejected for w in report.watches):  # work found: look again at once
                self._request(scope)  # the poll loop runs it right after this one
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

    def _share_models(self, watches: Sequence[WatchConfig]) -> None:
        """Between ticks, with ``ha``: keep this replica's share of the models (``Leader.rebalance``)."""
        if self.leader is None or not self.leader.member:
            return
        scorer = self.scorer
        self.leader.rebalance([w.model_name for w in watches],
                              busy=lambda model: scorer is not None and scorer.has(model))
