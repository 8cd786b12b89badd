"""One delivery thread per output: each model's events one at a time, in sequence order, off the tick.

The loop: while this replica holds the output (``OutputLock``; always without ``ha``), take each
model's next pending event (:meth:`Outbox.heads`) and, when its next attempt is due, send it: 2xx
(or a JetStream ack) settles it ``delivered`` and that model's next event goes at once; a failure
is counted and retried with exponential backoff and jitter (the output's ``retry_*`` settings);
once ``max_age_seconds`` have passed since its first attempt, the event is dead-lettered and the
model's next one goes. A 410 disables the output: events wait (their age runs) until
``events enable``. The thread wakes at once when events are appended (:meth:`Delivery.wake`), and
at least every second otherwise (a redelivery or a replay the CLI asked for, an enable).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from watcher.config.events import HttpOutputConfig, NatsOutputConfig, SlackOutputConfig
from watcher.events.db import OutputLock
from watcher.events.model import Output
from watcher.events.outbox import Outbox, OutboxRow, now_ms
from watcher.obs import metrics_events
from watcher.obs.logs import get_logger

log = get_logger("watcher.events")
IDLE_SECONDS = 1.0
"""Longest sleep between looks at the outbox (new requests from the CLI are seen within it)."""
ERROR_SECONDS = 5.0
"""Sleep after the outbox itself failed (its database is down)."""
OutputConfig = HttpOutputConfig | NatsOutputConfig | SlackOutputConfig


class Delivery:
    """The delivery thread of one output."""

    def __init__(self, outbox: Outbox, config: OutputConfig, output: Output, lock: OutputLock,
                 stop: threading.Event) -> None:
        self.name = config.name
        self._outbox = outbox
        self._config = config
        self._output = output
        self._lock = lock
        self._stop = stop
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"events-{config.name}", daemon=True)
        metrics_events.init_output(config.name)

    def start(self) -> Delivery:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Events were appended: look now."""
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._wake.set()
        self._thread.join(timeout)
        self._lock.release()
        self._output.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pause = self.step() if self._lock.held() else IDLE_SECONDS
            except Exception as exc:  # noqa: BLE001 - the outbox's database failed: try again later
                log.warning("events_outbox_failed", output=self.name, error=f"{type(exc).__name__}: {exc}")
                pause = ERROR_SECONDS
            if pause > 0:
                self._wake.wait(pause)
                self._wake.clear()

    def step(self) -> float:
        """One look at the outbox: send what is due; the seconds to sleep before the next look."""
        self._gauge()
        heads = self._outbox.heads(self.name)
        reason = self._outbox.disabled(self.name)
        metrics_events.mark_disabled(self.name, reason is not None)
        now = now_ms()
        if reason is not None:
            for row in heads:  # events wait while the output is disabled, and their age runs
                self._expired(row, now)
            return IDLE_SECONDS
        progressed = False
        for row in heads:
            if self._stop.is_set():
                return 0.0
            if row.next_attempt_ms <= now_ms():
                progressed = self._try(row) or progressed
                if self._outbox.disabled(self.name) is not None:
                    return 0.0
        if progressed:
            return 0.0  # a model's next event may be due at once
        waits = [(r.next_attempt_ms - now_ms()) / 1000 for r in heads]
        return max(0.0, min([IDLE_SECONDS, *waits]))

    def _gauge(self) -> None:
        count, oldest = self._outbox.pending_counts().get(self.name, (0, 0.0))
        metrics_events.set_pending(self.name, count, oldest)

    def _expired(self, row: OutboxRow, now: int) -> bool:
        """Dead-letter ``row`` when ``max_age_seconds`` passed since its first attempt; True if so."""
        first = self._outbox.started(row, now)
        if now - first < self._config.max_age_seconds * 1000:
            return False
        self._outbox.settle(row, "dead", row.last_error or "max_age_seconds reached", now)
        metrics_events.dead(self.name)
        log.error("events_dead_lettered", output=self.name, event_id=row.event.id, type=row.event.short_type,
                  model_name=row.event.model, attempts=row.attempts, error=row.last_error)
        return True

    def _try(self, row: OutboxRow) -> bool:
        """One attempt at ``row``; True when it is settled (delivered or dead: the model moves on)."""
        if row.first_attempt_ms is not None and self._expired(row, now_ms()):  # a first attempt: no clock yet
            return True
        result = self._output.send(replace(row.event, replay=row.replay))
        now = now_ms()
        if result.outcome == "delivered":
            self._outbox.settle(row, "delivered", None, now)
            metrics_events.delivered(self.name, row.event.short_type)
            log.debug("event_delivered", output=self.name, event_id=row.event.id, type=row.event.short_type,
                      model_name=row.event.model, attempts=row.attempts + 1, replay=row.replay)
            return True
        error = result.error or result.outcome
        if result.outcome == "dead":
            self._outbox.settle(row, "dead", error, now)
            metrics_events.dead(self.name)
            log.error("events_dead_lettered", output=self.name, event_id=row.event.id, type=row.event.short_type,
                      model_name=row.event.model, attempts=row.attempts + 1, error=error)
            return True
        metrics_events.count_failed(self.name)
        delay = self._config.retry_delay(row.attempts + 1)
        self._outbox.attempted(row, error, now + int(delay * 1000), now)
        if result.outcome == "disabled":
            self._outbox.set_disabled(self.name, error)
            log.error("events_output_disabled", output=self.name, error=error)
            return False
        (log.warning if row.attempts == 0 else log.debug)(
            "events_delivery_failed", output=self.name, event_id=row.event.id, type=row.event.short_type,
            model_name=row.event.model, attempts=row.attempts + 1, error=error, retry_in_seconds=round(delay, 3))
        return False
