"""When a tick runs: the interval job, and the ticks asked for in between.

* :class:`PollScheduler`: APScheduler calls the poll on an interval, with ``max_instances=1`` and
  ``coalesce=True``: a slow tick is never overlapped or queued up. :meth:`PollScheduler.kick` runs
  it now: right away when idle, or straight after the tick in hand, never two at a time.
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

from watcher.obs.logs import get_logger

log = get_logger("watcher.daemon")
FULL_TICK_SHARE = 0.9
"""A tick of every watch is due this share of the poll interval after the last one."""


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


class PollScheduler:
    """The interval job calling the poll (APScheduler, UTC); started by :meth:`start`."""

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._job: Job | None = None

    def start(self, poll: Callable[[], object]) -> None:
        """Run ``poll`` now and every interval after, in the scheduler's thread."""
        self._job = self._scheduler.add_job(poll, IntervalTrigger(seconds=self._interval), id="poll",
                                            max_instances=1, coalesce=True, misfire_grace_time=None,
                                            next_run_time=_utcnow())
        self._scheduler.start()

    def kick(self) -> None:
        """Run the poll now (straight after the one in hand, if any); nothing before :meth:`start`."""
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
