"""The composition root: the whole daemon built from the validated config, in one place.

:func:`build_process` makes the parts that live as long as the process (the scheduler, the poll
state, the reloader); :meth:`Process._build` makes the parts one config asks for, each given its
collaborators in its constructor:

* the tracking ``client`` (the CLI's), the ``ha`` :class:`~watcher.service.leader.Leader`;
* the effective :class:`~watcher.service.watch_set.WatchSet` (configured and discovered watches);
* with ``http``: the probes' :class:`~watcher.service.health.Health` and the
  :class:`~watcher.service.http.HttpServer`, with the webhook
  :class:`~watcher.service.webhooks.Receiver` and its
  :class:`~watcher.service.run_events.RunEventRouter` when ``http.webhook_secret`` is set;
* the :class:`~watcher.scoring.worker.ScoringWorker` when any watch or profile scores;
* the :class:`~watcher.service.poller.Poller` that the scheduler's job calls.

The HTTP server starts listening (:meth:`Process._listen`) once those parts are in place, so a
webhook that comes at once already finds them.

A reload (SIGHUP, ``watcher.service.reload``) is applied between ticks: the parts the new config
replaces are stopped and :meth:`Process._build` runs again; the client, the leader (its lock
connection) and the HTTP server are kept when their blocks did not change, the scoring worker is
always restarted, and the new watch set searches for tagged experiments at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from starlette.routing import BaseRoute

from watcher.config import WatchConfig, WatcherConfig
from watcher.console import Console
from watcher.engine import TickReport
from watcher.engine.facts import no_facts
from watcher.engine.leftovers import settle_leftovers
from watcher.events.service import EventsService, start_events
from watcher.obs.logs import get_logger
from watcher.scoring.engines import stop_engines
from watcher.scoring.worker import ScoringWorker
from watcher.service.console_feed import console_providers
from watcher.service.health import Health
from watcher.service.http import HttpServer, build_app
from watcher.service.leader import Leader, make_leader
from watcher.service.poller import Poller, PollState
from watcher.service.reload import Reloader
from watcher.service.run_events import RunEventRouter
from watcher.service.ticks import PollScheduler, TickRequests
from watcher.service.watch_set import WatchSet
from watcher.service.watches_api import watch_routes
from watcher.service.webhooks import Receiver
from watcher.store.client import make_client

if TYPE_CHECKING:
    from watcher.approvals.board import Board

log = get_logger("watcher.daemon")


class ServeError(RuntimeError):
    """The HTTP server could not listen at start-up (the daemon exits 1)."""


@dataclass(frozen=True)
class Parts:
    """What one config builds."""

    config: WatcherConfig
    client: MlflowClient
    leader: Leader | None
    watches: WatchSet
    scorer: ScoringWorker | None
    health: Health | None
    http: HttpServer | None
    poller: Poller


def build_process(config: WatcherConfig, config_path: str | Path | None = None, *,
                  client: MlflowClient | None = None, stop: threading.Event | None = None) -> Process:
    """The daemon, from the validated config. ``config_path``: SIGHUP re-reads it; ``stop``: set
    by the signal handlers. Raises :class:`ServeError` when the HTTP server cannot listen."""
    scheduler = PollScheduler(config.poll_interval_seconds)
    state = PollState(requests=TickRequests(kick=scheduler.kick), stop=stop or threading.Event())
    reloader = Reloader(config_path) if config_path is not None else None
    return Process(config, client or make_client(config), state, scheduler, reloader)


class Process:
    """The running daemon: the scheduler calls :meth:`poll` until the stop event is set."""

    def __init__(self, config: WatcherConfig, client: MlflowClient, state: PollState, scheduler: PollScheduler,
                 reloader: Reloader | None) -> None:
        self._state = state
        self._scheduler = scheduler
        self._reloader = reloader
        self._console = self._make_console(config)
        self._events: EventsService | None = None
        self._leftovers_settled = False
        self._parts = self._build(config, client, make_leader(config), kept=None)
        try:
            self._listen()
        except RuntimeError as exc:
            self._stop_parts()
            raise ServeError(str(exc)) from exc
        self._events = start_events(config, client, self.watches, self._board)  # issue 28: outgoing events
        self._tell_events()

    def _build(self, config: WatcherConfig, client: MlflowClient, leader: Leader | None, kept: Parts | None) -> Parts:
        """Every part of one config, given the client and the leader; ``kept``: the parts whose
        HTTP side (probes and server) stays."""
        watches = WatchSet(config, self._state.found)
        health = kept.health if kept is not None else Health.for_config(config, leader) if config.http else None
        scorer = _start_scorer(config, leader, watches)
        poller = Poller(client, config, leader=leader, scorer=scorer, health=health, watches=watches,
                        state=self._state, on_tick=self._after_tick)
        return Parts(config, client, leader, watches, scorer, health, kept.http if kept is not None else None, poller)

    def _listen(self) -> None:
        """Serve the ``http`` block when it is not served yet: probes, metrics and the webhook
        receiver, which read the parts in force. RuntimeError when it cannot listen."""
        parts = self._parts
        if parts.config.http is None or parts.health is None or parts.http is not None:
            return
        http = parts.config.http
        router = RunEventRouter(lambda: self._parts.client, self.watches)
        receiver = (Receiver(parts.config, self._state.requests.request, watches=self.watches, run_events=router)
                    if http.webhook_secret is not None else None)
        console = self._console.routes() if self._console is not None and http.console else []
        approvals = self._approvals_routes(parts)
        server = HttpServer(build_app(parts.health, http, receiver, extra_routes=[*console, *approvals, *watch_routes(
                                lambda: self._parts.poller.watch_states())]),  # noqa: PLW0108 - the poller of the config in force
                            http)
        server.start()
        log.info("http_listening", host=http.host, port=server.port, webhooks=receiver is not None)
        self._parts = replace(parts, http=server)

    def _approvals_routes(self, parts: Parts) -> list[BaseRoute]:
        """The approvals API (issue 27) when any watch or profile has ``approval``; its board is the tick's too."""
        from watcher.service.approvals_api import approvals_api

        made = approvals_api(parts.config, parts.client, self.watches, lambda: self._parts.config,
                             lambda: self._state.requests.request("approvals"))
        if made is None:
            return []
        self._state.session.approvals = made.service.board
        return made.approval_routes()

    def _after_tick(self, watches: Sequence[WatchConfig], report: TickReport | None, error: str) -> None:
        """Every tick's hand-off: the console's view (issue 29), the outgoing events' feeder (issue 28)."""
        if self._console is not None:
            self._console.after_tick(watches, report, error)
        if self._events is not None:
            self._events.after_tick(report)

    def _make_console(self, config: WatcherConfig) -> Console | None:
        """The console's state and pages (issue 29), fed by every tick, when ``http`` is configured;
        its routes are served while ``http.console`` is on."""
        if config.http is None:
            return None
        return Console(lambda: self._parts.client, lambda: self._parts.config, self.watches, console_providers(
            lambda: self._parts.poller.watch_states(), lambda: self._parts.leader,  # noqa: PLW0108 - the parts of now
            lambda: self._state.session.approvals, lambda: self._events))

    def watches(self) -> list[WatchConfig]:
        """The effective watch set now (the webhook receiver's and the run-event router's view)."""
        return self._parts.watches.watches()

    def poll(self) -> TickReport | None:
        """The scheduler's job: apply a pending reload (between ticks), then poll."""
        if self._reloader is not None:
            self._reloader.apply_pending(self._parts.config, self._reload)
        if not self._leftovers_settled:
            self._settle_leftovers()
        return self._parts.poller.poll()

    def _board(self) -> Board | None:
        """The approvals board in force (issue 27), for ``approval.changed`` events (issue 28)."""
        return self._state.session.approvals

    def _tell_events(self) -> None:
        """The tick tells each committed fact to the events in force at once (issue 28), if any."""
        self._state.session.facts = self._events.tell if self._events is not None else no_facts

    def _settle_leftovers(self) -> None:
        """Before the first tick: finish or abandon the daemon's own intents a killed process left
        open (issue 28: a move redone after a kill -9 has one history entry, one event id)."""
        try:
            settle_leftovers(self._parts.client, self._parts.config)
            self._leftovers_settled = True
        except Exception as exc:  # noqa: BLE001 - the server is down: tried again before the next tick
            log.warning("leftover_intents_failed", error=f"{type(exc).__name__}: {exc}")

    def request_reload(self) -> None:
        """SIGHUP: re-read the config file before the next tick, which is asked for now."""
        if self._reloader is not None:
            self._reloader.request()
            self._state.requests.request("reload")

    def run(self) -> int:
        """Poll until the stop event is set (SIGTERM/SIGINT), then stop every part in order; returns 0."""
        config = self._parts.config
        log.info("watcher_started", tracking_uri=config.tracking_uri, watches=len(config.watches),
                 poll_interval_seconds=config.poll_interval_seconds, ha=config.ha is not None,
                 http=config.http is not None, discover=config.discover is not None)
        self._scheduler.start(self.poll, lambda: self._parts.poller.probe_server(),  # noqa: PLW0108 - after a reload too
                              config.bulkheads.server_probe_seconds)
        try:
            while not self._state.stop.wait(1.0):
                pass
        finally:
            self._scheduler.shutdown()
            self._stop_parts()
            stop_engines()  # the Spark session (JVM and workers), if one was ever started
        log.info("watcher_stopped")
        return 0

    def _reload(self, new: WatcherConfig, changed: list[str]) -> None:
        """Put a reloaded config in force (on the poll thread, between ticks: no registration in hand)."""
        old = self._parts
        if "ha" in changed and old.leader is not None:
            old.leader.close()
        if old.scorer is not None:
            old.scorer.stop()
        if "http" in changed and old.http is not None:
            old.http.stop()
        if "poll_interval_seconds" in changed:
            self._scheduler.reschedule(new.poll_interval_seconds)
        client = make_client(new) if "tracking_uri" in changed or "registry_uri" in changed else old.client
        leader = make_leader(new) if "ha" in changed else old.leader
        self._parts = self._build(new, client, leader, kept=old if "http" not in changed else None)
        self._restart_events(new, client, changed)
        if "http" in changed:
            self._listen()  # RuntimeError: config_reload_failed; the new config is in force for polling

    def _restart_events(self, new: WatcherConfig, client: MlflowClient, changed: list[str]) -> None:
        """The outgoing events' service again when its block, the server or the lock database changed."""
        if self._events is not None and {"events", "tracking_uri", "ha"} & set(changed):
            self._events.stop()
            self._events = start_events(new, client, self.watches, self._board)
        elif self._events is None and "events" in changed:
            self._events = start_events(new, client, self.watches, self._board)
        self._tell_events()

    def _stop_parts(self) -> None:
        """At shutdown: the scoring in hand finishes (its record is written before we exit), the
        locks are released, the HTTP server stops."""
        parts = self._parts
        if parts.scorer is not None:
            parts.scorer.stop()
        if self._events is not None:
            self._events.stop()  # before the lock connection: an attempt in hand finishes
        if parts.leader is not None:
            parts.leader.close()
        if parts.http is not None:
            parts.http.stop()


def _start_scorer(config: WatcherConfig, leader: Leader | None, watches: WatchSet) -> ScoringWorker | None:
    """The scoring thread, when any watch or profile scores (discovered watches take profiles), with
    its own client, as configured for the daemon."""
    if not any(w.scoring is not None for w in config.watches) and not any(
            p.scoring is not None for p in config.profiles.values()):
        return None
    return ScoringWorker(make_client(config), config, leading=leader.holds if leader else None,
                         lookup=watches.watch_for).start()
