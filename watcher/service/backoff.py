"""After a failed poll: the backoff before the next one, and the tracking server's outage, said once.

* A failed poll (server down, 5xx, timeout) is a ``poll_failed`` event; the next polls are skipped
  until an exponential backoff (``retry``) has passed.
* An unreachable tracking server is an outage, said once: ``tracking_server_unreachable`` (error)
  at its start, ``tracking_server_recovered`` (info, ``outage_seconds``) at its end; the failed
  polls in between are ``poll_failed`` at debug. Another failure is ``poll_failed`` at error the
  first time, warning after, and ``poll_recovered`` (info) at its end.
* Back at once: during an outage the poller probes the server's ``/health`` every
  ``bulkheads.server_probe_seconds`` whatever the backoff (:meth:`Backoff.needs_probe`); the first
  answer after the server was seen down ends the backoff (:meth:`Backoff.probe_answered`), so the
  fleet is polled again within a probe interval of the server's return. When the poll after an
  answer fails again (a server that answers ``/health`` before it serves), the next answer ends the
  backoff only once the server was seen down again, or after :data:`EARLY_GAP_SECONDS` doubled per
  such early end: the backoff still spaces the polls of a server that answers only ``/health``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from watcher.config import RetryConfig
from watcher.obs.logs import get_logger

log = get_logger("watcher.daemon")
EARLY_GAP_SECONDS = 2.0
"""After a probe ended the backoff and the poll failed again, the next early end waits this, doubled per early end."""


class Backoff:
    """Consecutive poll failures, when the next poll may run, and the outage in progress (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures = 0
        self._not_before = 0.0
        """Monotonic time before which a poll is skipped."""
        self._outage_since: float | None = None
        """Monotonic time of the first failed poll of a tracking-server outage in progress."""
        self._down_seen = True
        """Whether the server was seen down since a probe last ended the backoff."""
        self._early: tuple[int, float] = (0, 0.0)
        """Backoffs ended by a probe in this outage, and when the last one was."""
        self._lock = threading.Lock()

    @property
    def failures(self) -> int:
        """Consecutive failed polls (0 after a good one)."""
        with self._lock:
            return self._failures

    def waiting(self) -> bool:
        """True while the backoff after a failed poll has not passed: the poll is skipped."""
        with self._lock:
            return self._clock() < self._not_before

    def retry_now(self) -> None:
        """End the backoff in progress: the next poll runs (the failures stay counted)."""
        with self._lock:
            self._not_before = 0.0

    def needs_probe(self) -> bool:
        """True during an outage while the backoff waits: the server's ``/health`` is probed."""
        with self._lock:
            return self._outage_since is not None and self._clock() < self._not_before

    def probe_answered(self, answered: bool) -> bool:
        """A probe during the outage: True when it ends the backoff (the server is back: poll now)."""
        with self._lock:
            if self._outage_since is None or self._clock() >= self._not_before:
                return False
            ends, last = self._early
            if not answered:
                self._down_seen = True
                return False
            if not self._down_seen and self._clock() < last + EARLY_GAP_SECONDS * 2 ** ends:
                return False
            self._down_seen, self._not_before, self._early = False, 0.0, (ends + 1, self._clock())
            return True

    def succeeded(self) -> None:
        """A good poll: say the end of the outage (or of the failures), and start over."""
        with self._lock:
            failures, since = self._failures, self._outage_since
            self._failures, self._not_before, self._outage_since = 0, 0.0, None
            self._down_seen, self._early = True, (0, 0.0)
            now = self._clock()
        if since is not None:
            log.info("tracking_server_recovered", outage_seconds=round(now - since, 1), failed_polls=failures)
        elif failures:
            log.info("poll_recovered", after_failures=failures)

    def failed(self, error: str, unreachable: bool, retry: RetryConfig) -> float:
        """A failed poll: wait ``retry.delay(failures)`` before the next; returns that delay."""
        with self._lock:
            self._failures += 1
            failures = self._failures
            delay = retry.delay(failures)
            now = self._clock()
            self._not_before = now + delay
            outage_starts = unreachable and self._outage_since is None
            if outage_starts:
                self._outage_since = now
        if outage_starts:
            log.error("tracking_server_unreachable", error=error, retry_in_seconds=delay,
                      hint="polling goes on with backoff; nothing is lost, runs are picked up on return")
        level = log.debug if unreachable else (log.error if failures == 1 else log.warning)
        level("poll_failed", error=error, consecutive_failures=failures, retry_in_seconds=delay)
        return delay
