"""The outgoing events of a running daemon: the outbox, the feeder and one delivery thread per output.

:class:`EventsService` is built by the process (``watcher.service.process``) when the config has an
``events`` block. At start it records each output's first sight (a new output starts from that
moment), then its *feeder* thread reads the facts of the last ``rederive_seconds`` from MLflow
and appends them (idempotent by id: what a kill -9 between a fact and its append left out is
appended now, what was appended before is a no-op). After every poll the process calls
:meth:`EventsService.after_tick` with the tick's report: the feeder (never the poll thread) reads
that tick's decisions and the new audit entries and scoring runs, appends their events and wakes
the delivery threads, so a slow receiver never delays registration.

That after-tick read is the backstop. The engine tells each fact the moment it is committed
(:meth:`EventsService.tell`, the session's ``facts`` sink: a staging move right after its alias
request, a decision right after its tags): the fact is queued, and the *live* thread turns it into
its event (the same id and sequence as the read back), appends it and wakes the deliveries at once,
while the tick goes on. In the same batch it appends the audit entries and scoring runs recorded
since the feeder's watermarks (a CLI promote the feeder has not read yet), so a model's earlier
fact is never sent after the told one.

The outbox is a SQLite file (``events.outbox_path``) for a single replica, or the ``ha`` lock
database: every replica appends (the same ids), and each output is delivered by the one replica
holding that output's advisory lock.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import TickReport
from watcher.engine.facts import Fact
from watcher.events.db import OutputLock, open_database
from watcher.events.delivery import Delivery
from watcher.events.facts import Deriver
from watcher.events.model import OutgoingEvent
from watcher.events.outbox import Outbox
from watcher.events.outputs import make_output
from watcher.obs.logs import get_logger
from watcher.obs.redact import add_secrets

if TYPE_CHECKING:
    from watcher.approvals.board import Board

log = get_logger("watcher.events")
RETRY_SECONDS = 5.0
"""Wait before reading the facts again after MLflow failed to answer."""


def open_outbox(config: WatcherConfig) -> Outbox:
    """The outbox of this config (the ``ha`` database, else the SQLite file); for the daemon and the CLI."""
    assert config.events is not None
    return Outbox(open_database(config.events.outbox_path, config.ha.lock_url if config.ha else None))


class EventsService:
    """The outbox, its feeder and the delivery threads of one config."""

    def __init__(self, client: MlflowClient, config: WatcherConfig, watches: Callable[[], list[WatchConfig]],
                 ui_url: str | None = None, board: Callable[[], Board | None] = lambda: None) -> None:
        assert config.events is not None
        events = config.events
        add_secrets(events.secret_values())
        self._config = config
        self._watches = watches
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._asked: dict[str, set[str]] = {}
        self._asked_lock = threading.Lock()
        self.outbox = open_outbox(config)
        self._first_seen = self.outbox.first_seen([o.name for o in events.outputs])
        self._deriver = Deriver(client, config, watches(), board)
        lock_url = config.ha.lock_url if config.ha else None
        self._deliveries = [Delivery(self.outbox, out, make_output(out, ui_url), OutputLock(lock_url, out.name),
                                     self._stop) for out in events.outputs]
        self._feeder = threading.Thread(target=self._feed, name="events-feeder", daemon=True)
        self._live: queue.SimpleQueue[Fact | None] = queue.SimpleQueue()  # None: stop
        self._appender = threading.Thread(target=self._append_live, name="events-live", daemon=True)

    def start(self) -> EventsService:
        for delivery in self._deliveries:
            delivery.start()
        self._feeder.start()
        self._appender.start()
        log.info("events_started", outputs=[d.name for d in self._deliveries], source=self._deriver.source)
        return self

    def after_tick(self, report: TickReport | None) -> None:
        """The poll thread's hand-off (no request here): the tick's decided runs go to the feeder."""
        if report is not None:
            with self._asked_lock:
                for watch in report.watches:
                    runs = [r for r, _ in watch.registered] + [r for r, _ in watch.rejected]
                    if runs:
                        self._asked.setdefault(watch.experiment, set()).update(runs)
        self._kick.set()

    def tell(self, fact: Fact) -> None:
        """The engine's fact sink (the tick's thread or its decide pool): queued, never waits."""
        self._live.put(fact)

    def _append_live(self) -> None:
        """The live thread: each committed fact's event appended as soon as it is told."""
        while not self._stop.is_set():
            told = [self._live.get()]
            while not self._live.empty():
                told.append(self._live.get_nowait())
            facts = [f for f in told if f is not None]
            if facts and not self._stop.is_set() and not self._derive(partial(self._with_earlier, facts), "live"):
                self._derive(partial(self._deriver.live_events, facts), "live")  # MLflow failed: the told alone

    def _with_earlier(self, facts: list[Fact]) -> list[OutgoingEvent]:
        """The told facts' events, with the moves and scorings recorded since the feeder's watermarks
        (a CLI promote, a scoring run that just ended): appended in one batch, an earlier fact of the
        same model is owed before the told one, so per-model order holds (one or two requests)."""
        return self._deriver.live_events(facts) + self._deriver.moves() + self._deriver.scorings()

    def _take(self) -> dict[str, list[str]]:
        with self._asked_lock:
            asked, self._asked = self._asked, {}
        return {name: sorted(runs) for name, runs in asked.items()}

    def _feed(self) -> None:
        """The feeder: first the start-up re-derivation (until it succeeds), then one read per kick."""
        while not self._stop.is_set():
            if self._derive(self._deriver.startup, "startup"):
                break
            self._stop.wait(RETRY_SECONDS)
        while not self._stop.is_set():
            self._kick.wait(RETRY_SECONDS * 6)
            self._kick.clear()
            if self._stop.is_set():
                return
            asked = self._take()
            if not self._derive(partial(self._deriver.tick_facts, asked), "tick"):
                with self._asked_lock:  # read them again next time
                    for name, runs in asked.items():
                        self._asked.setdefault(name, set()).update(runs)

    def _derive(self, read: Callable[[], list[OutgoingEvent]], why: str) -> bool:
        """Read facts, append their events, wake the deliveries; False when MLflow or the outbox failed."""
        started = time.monotonic()
        try:
            self._deriver.set_watches(self._watches())
            events = read()
            rows = self.outbox.append(events, self._config.events.outputs if self._config.events else [],
                                      self._first_seen)
        except Exception as exc:  # noqa: BLE001 - retried at the next kick; nothing is lost (re-derived)
            log.warning("events_derive_failed", why=why, error=f"{type(exc).__name__}: {exc}")
            return False
        if rows:
            for delivery in self._deliveries:
                delivery.wake()
        (log.info if why == "startup" else log.debug)(
            "events_derived", why=why, events=len(events), rows=rows,
            seconds=round(time.monotonic() - started, 3))
        return True

    def pending_by_model(self) -> Mapping[str, int]:
        """Model -> events waiting over every output (the console's view); empty when the outbox fails."""
        try:
            return self.outbox.pending_models()
        except Exception:  # noqa: BLE001 - a view, never an error page
            return {}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the feeder and the deliveries (an attempt in hand finishes within its timeout)."""
        self._stop.set()
        self._kick.set()
        self._feeder.join(timeout)
        self._live.put(None)
        self._appender.join(timeout)
        for delivery in self._deliveries:
            delivery.join(timeout)
        self.outbox.db.close()
        log.info("events_stopped")


def start_events(config: WatcherConfig, client: MlflowClient, watches: Callable[[], list[WatchConfig]],
                 board: Callable[[], Board | None] = lambda: None) -> EventsService | None:
    """The started events service of ``config``; None without an ``events`` block or outputs.
    ``board``: the process's approvals board, once it has one (``approval.changed`` events)."""
    if config.events is None or not config.events.outputs:
        return None
    return EventsService(client, config, watches, ui_url=config.ui_url, board=board).start()
