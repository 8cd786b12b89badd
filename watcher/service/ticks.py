"""When a tick runs: the interval job, and the ticks asked for in between.

* :class:`PollScheduler`: APScheduler calls the poll on an interval through a :class:`Coalesced`
  job: a tick that comes due while the previous one is still running is coalesced into it (never
  two at a time, never queued up), counted (``registry_watcher_ticks_skipped_total``) and said at
  most once a minute (``ticks_coalesced``), never APScheduler's "maximum number of running instances
  reached" warning per tick. :meth:`PollScheduler.kick` runs it now: right away when idle, or
  straight after the tick in hand. A second job (:meth:`PollScheduler.start`'s ``probe``) probes the
  tracking server every ``bulkheads.server_probe_seconds`` during an outage, whatever the backoff.
* :class:`TickRequests`: a webhook delivery, a run event, a reload or a tick that found work asks for
  a tick. Requests made during a tick coalesce into one tick after it. A run event's request is
  *scoped* to the watches of its experiments: scoped + scoped is the union, scoped + full is full,
  and when a tick of every watch is due (``full_tick_started``: 0.9 poll interval after the last
  one) the next tick covers every watch whatever was asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcher.obs import metrics_fleet
from watcher.obs.logs import get_logger

log = get_logger("watcher.daemon")
FULL_TICK_SHARE = 0.9
"""A tick of every watch is due this share of the poll interval after the last one."""
SAY_SKIPPED_EVERY_SECONDS = 60.0
"""``ticks_coalesced`` is said at most this often (the counter has every one)."""
INSTANCES = 3
"""APScheduler's limit, never reached: a run due while one is in hand returns at once."""


class TickRequests:
    """The ticks asked for since the last tick started, and what they cover (thread-safe)."""

    def __init__(self, kick: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.monotonic) -> None:
        self._kick = kick
        """Makes the scheduler run a poll now (a no-op outside the daemon)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = False
        self._scope: set[str] | None = None
        """Experiments whose watches the requested tick is for (run events); None: every watch."""
        self._full_due = 0.0
        """Monotonic time the next tick of every watch is due; before it, a run event ticks only its watches."""
        self._deliveries = 0
        """Verified webhook deliveries that asked for a tick since the last tick started."""

    def request(self, reason: str, experiments: Iterable[str] | None = None) -> None:
        """Ask for a tick as soon as possible. ``experiments`` (a run event) limits it to the watches
        of those experiments, unless a tick of every watch is due or also asked for."""
        names = None if experiments is None else set(experiments)
        log.debug("tick_requested", reason=reason, experiments=sorted(names) if names is not None else None)
        with self._lock:
            if reason.startswith("webhook:"):
                self._deliveries += 1
        self.again(names)
        self._kick()

    def again(self, scope: set[str] | None) -> None:
        """Another tick over ``scope`` right after the one in hand (it found work); no kick: the
        poll loop runs it before it returns."""
        with self._lock:
            if not self._pending:
                self._scope = scope
            elif self._scope is not None:
                self._scope = None if scope is None else self._scope | scope
            self._pending = True

    def pending(self) -> bool:
        """Whether a tick was asked for since the last one started."""
        with self._lock:
            return self._pending

    def asked_for(self, experiment: str) -> bool:
        """Whether a run event for ``experiment`` is waiting (it came during the tick in hand)."""
        with self._lock:
            return self._pending and self._scope is not None and experiment in self._scope

    def take(self) -> set[str] | None:
        """What the tick starting now covers (None: every watch), and clear the request."""
        with self._lock:
            scope = self._scope if self._pending else None
            self._pending, self._scope = False, None
            full_due = self._clock() >= self._full_due
        return None if full_due else scope

    def take_deliveries(self) -> int:
        """The webhook deliveries that asked for a tick since the last call (for one ``webhook_tick`` line)."""
        with self._lock:
            deliveries, self._deliveries = self._deliveries, 0
        return deliveries

    def full_tick_started(self, poll_interval_seconds: float) -> None:
        """A tick of every watch started: the next is due in :data:`FULL_TICK_SHARE` of the interval."""
        with self._lock:
            self._full_due = self._clock() + poll_interval_seconds * FULL_TICK_SHARE


class Coalesced:
    """A job that never runs twice at a time (thread-safe). A run that comes due while one is in
    hand returns at once: counted as a skipped tick (``count``) and said at most once a minute;
    :meth:`run_again` (a kick) makes the run in hand go once more right after."""

    def __init__(self, job: Callable[[], object], *, count: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._job = job
        self._count = count
        self._clock = clock
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._skipped = 0
        """Skipped since the last ``ticks_coalesced`` line."""
        self._said_at: float | None = None

    def __call__(self) -> None:
        with self._lock:
            busy, self._running = self._running, True
        if busy:
            self._skip()
            return
        try:
            while True:
                self._job()
                with self._lock:
                    if not self._again:
                        break
                    self._again = False
        finally:
            with self._lock:
                self._running = self._again = False

    def run_again(self) -> bool:
        """When a run is in hand: it runs once more right after (True); else False (start one)."""
        with self._lock:
            if self._running:
                self._again = True
            return self._running

    def _skip(self) -> None:
        if not self._count:
            return
        metrics_fleet.count_skipped_tick()
        now = self._clock()
        with self._lock:
            self._skipped += 1
            said = self._said_at
            if said is not None and now - said < SAY_SKIPPED_EVERY_SECONDS:
                return
            skipped, self._skipped, self._said_at = self._skipped, 0, now
        log.info("ticks_coalesced", skipped=skipped,
                 window_seconds=None if said is None else round(now - said, 1))


class PollScheduler:
    """The interval job calling the poll (APScheduler, UTC); started by :meth:`start`."""

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._job: Job | None = None
        self._poll: Coalesced | None = None

    def start(self, poll: Callable[[], object], probe: Callable[[], object] | None = None,
              probe_seconds: float = 2.0) -> None:
        """Run ``poll`` now and every interval after, in the scheduler's threads; ``probe`` (the
        tracking server's return) every ``probe_seconds``, never two at a time either."""
        self._poll = Coalesced(poll)
        self._job = self._scheduler.add_job(self._poll, IntervalTrigger(seconds=self._interval), id="poll",
                                            max_instances=INSTANCES, coalesce=True, misfire_grace_time=None,
                                            next_run_time=_utcnow())
        if probe is not None:
            self._scheduler.add_job(Coalesced(probe, count=False), IntervalTrigger(seconds=probe_seconds),
                                    id="probe", max_instances=INSTANCES, coalesce=True, misfire_grace_time=None)
        self._scheduler.start()

    def kick(self) -> None:
        """Run the poll now (straight after the one in hand, if any); nothing before :meth:`start`."""
        if self._poll is not None and self._poll.run_again():
            return
        if self._job is not None:
            self._job.modify(next_run_time=_utcnow())

    def reschedule(self, interval_seconds: float) -> None:
        """A reload changed ``poll_interval_seconds``."""
        self._interval = interval_seconds
        if self._job is not None:
            self._job.reschedule(IntervalTrigger(seconds=interval_seconds))

    def shutdown(self) -> None:
        """Stop scheduling and wait for the poll in hand to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
