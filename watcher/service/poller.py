"""One poll: call the tick over the watches it covers, log its summary, feed the probes and the backoff.

The parts it works with are given to it (:class:`Poller`'s constructor) and stay its own:

* :class:`PollState`: what the process keeps across a reload (the tick's ``Session``, the
  :class:`~watcher.service.backoff.Backoff`, the :class:`~watcher.service.ticks.TickRequests`, the
  watches found by discovery, the stop event). A reload builds a new poller over the same state.
* the effective watch set (:class:`~watcher.service.watch_set.WatchSet`), searched for tagged
  experiments before a tick of every watch, never during one;
* optional: the ``ha`` :class:`~watcher.service.leader.Leader` (between ticks of every watch the
  poller keeps this replica's share of the models, ``Leader.rebalance``), the scoring worker (None
  scores inline in the tick: ``once`` and tests) and the probes' :class:`~watcher.service.health.Health`.

:meth:`Poller.poll` runs one tick, then again while ticks were asked for during it (a webhook
delivery, a run event, a tick that found work), never two at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import Session, TickOptions, TickReport, reconcile_once
from watcher.engine.discovery import Discovery
from watcher.obs import metrics_console
from watcher.obs.logs import get_logger
from watcher.scoring.worker import ScoringWorker
from watcher.service.backoff import Backoff
from watcher.service.bulkheads import Bulkheads, refused_states
from watcher.service.health import Health, after_poll
from watcher.service.leader import Leader
from watcher.service.ticks import TickRequests
from watcher.service.watch_set import WatchSet
from watcher.service.watch_states import WatchState, WatchStates
from watcher.store import readability
from watcher.store.errors import is_unreachable

log = get_logger("watcher.daemon")
TickHook = Callable[[Sequence[WatchConfig], TickReport | None, str], None]
"""Called at the end of every tick with the effective watches, the tick's report (None when the
tick raised) and the error text: the console's view of the fleet (``watcher.console``)."""


@dataclass(frozen=True)
class PollState:
    """The parts a poller keeps across a reload; built once per process."""

    session: Session = field(default_factory=Session)
    requests: TickRequests = field(default_factory=TickRequests)
    backoff: Backoff = field(default_factory=Backoff)
    found: Discovery = field(default_factory=Discovery)
    """The watches found by experiment tag (``discover``)."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM/SIGINT: the tick finishes the run in hand and no other starts."""
    states: WatchStates = field(default_factory=WatchStates)
    """Each watch's state (``ok``/``failed``), read by ``GET /api/v1/watches`` and ``once``."""


@dataclass(frozen=True)
class _TickResult:
    """How one tick ended: its report (None when the tick itself raised), the error text, and
    whether the tracking server was unreachable."""

    report: TickReport | None
    error: str = ""
    unreachable: bool = False

    @property
    def good(self) -> bool:
        """The poll went well for the fleet (a watch failed on its own is retried on its own backoff)."""
        return self.report is not None and not self.report.outage


class Poller:
    """Calls the tick for the scheduler job (or ``once``); thread-safe for :meth:`request_tick`."""

    def __init__(self, client: MlflowClient, config: WatcherConfig, *, leader: Leader | None = None,
                 scorer: ScoringWorker | None = None, health: Health | None = None,
                 watches: WatchSet | None = None, state: PollState | None = None,
                 on_tick: TickHook | None = None) -> None:
        self._client = client
        self._config = config
        self._leader = leader
        """The ``ha`` lock holder; None acts on every watch (one replica)."""
        self._scorer = scorer
        """The scoring thread; None scores inline in the tick."""
        self._health = health
        """The loop heartbeat and per-watch poll outcome, when ``http`` is on."""
        self._state = state if state is not None else PollState()
        self._watches = watches if watches is not None else WatchSet(config, self._state.found)
        self._bulkheads = Bulkheads(self._state.states, config, self._state.session.experiments)
        self._on_tick = on_tick

    @property
    def leader(self) -> Leader | None:
        return self._leader

    @property
    def backoff(self) -> Backoff:
        return self._state.backoff

    @property
    def discovery(self) -> Discovery:
        """The watches found by experiment tag (``source_of`` says where a watch comes from)."""
        return self._watches.found

    def watches(self) -> list[WatchConfig]:
        """The effective watch set: configured, then discovered (an explicit entry wins)."""
        return self._watches.watches()

    def discover(self, force: bool = False) -> None:
        """Search experiments for the discovery tag when due (or ``force``); errors keep the old set."""
        if self._watches.refresh(self._client, force):
            self._state.session.experiments.remember(self._client, self._watches.found.experiment_ids())

    def watch_states(self) -> list[WatchState]:
        """Every watch's state now (``GET /api/v1/watches``); under ``ha``, who holds each, as the leader knows."""
        leader = self._leader
        holder = None if leader is None else lambda model: (leader.holder_of(model), leader.holds_now(model))
        return self._state.states.views(refused_states(self._watches), holder)

    def probe_server(self) -> bool:
        """During an outage, whatever the backoff: GET the server's ``/health``; the first answer
        ends the backoff and asks for a tick now (the scheduler's probe job). True when it did."""
        backoff = self._state.backoff
        if self._state.stop.is_set() or not backoff.needs_probe():
            return False
        if not backoff.probe_answered(readability.server_answers(self._client)):
            return False
        log.info("tracking_server_back", probe_url=readability.health_url(self._client))
        self.request_tick("tracking_server_back")
        return True

    def request_tick(self, reason: str, experiments: Iterable[str] | None = None) -> None:
        """Ask for a tick as soon as possible (``TickRequests.request``)."""
        self._state.requests.request(reason, experiments)

    def poll(self) -> TickReport | None:
        """One scheduled poll, repeated while ticks were requested during it."""
        if self._health is not None:
            self._health.beat()
        report = self._poll_once()
        while self._state.requests.pending() and not self._state.stop.is_set() and report is not None \
                and not report.outage:
            again = self._poll_once()
            report = report if again is None else report.then(again)
        return report

    def _poll_once(self) -> TickReport | None:
        """One poll; returns None when skipped for backoff or shutdown."""
        scope = self._state.requests.take()
        if self._state.stop.is_set() or self._state.backoff.waiting():
            return None
        deliveries = self._state.requests.take_deliveries()
        if deliveries:  # one line per tick however many deliveries asked for it (each is logged at debug)
            log.info("webhook_tick", deliveries=deliveries)
        if self._health is not None:
            self._health.poll_started()
        covered = self._covered(scope)
        started = time.monotonic()
        result = self._tick(covered, scope)
        metrics_console.observe_tick(time.monotonic() - started)
        after_poll(self._client, result.report, result.unreachable, self._health)
        if self._on_tick is not None:
            self._on_tick(self.watches(), result.report, result.error)
        if result.good:
            assert result.report is not None
            self._state.backoff.succeeded()
            _summary(result.report)
            if any(w.registered or w.rejected for w in result.report.watches):  # work found: look again at once
                self._state.requests.again(scope)  # the poll loop runs it right after this one
        else:
            self._state.backoff.failed(result.error, result.unreachable, self._config.retry)
        return result.report

    def _covered(self, scope: set[str] | None) -> list[WatchConfig]:
        """The watches this tick covers; a tick of every watch first searches for tagged
        experiments and keeps this replica's share of the models."""
        self.discover()
        watches = self.watches()
        if scope is not None:
            return [w for w in watches if w.experiment in scope]
        self._state.requests.full_tick_started(self._config.poll_interval_seconds)
        self._share_models(watches)
        if self._health is not None:
            self._health.set_models([w.model_name for w in watches])
        return watches

    def _tick(self, watches: list[WatchConfig], scope: set[str] | None) -> _TickResult:
        """The engine's tick; anything it raises but shutdown is an outcome, never the loop's end."""
        report: TickReport | None = None
        try:  # a failed watch is held out (its report says why) or probed on its own first
            covered, held = self._bulkheads.before(self._client, watches, full=scope is None)
            report = reconcile_once(self._client, self._config, session=self._state.session, leader=self._leader,
                                    options=TickOptions(stop=self._state.stop,
                                                        scorer=self._scorer.submit if self._scorer else None,
                                                        watches=covered, scan=scope is None,
                                                        asked=self._state.requests.asked_for))
            report.watches.extend(held)
            self._bulkheads.after(report, held)
        except Exception as exc:  # noqa: BLE001 - the loop survives anything but shutdown
            return _TickResult(None, f"{type(exc).__name__}: {exc}", is_unreachable(exc))
        finally:
            if self._health is not None:
                self._health.poll_finished(report, failed=report is None and not self._state.stop.is_set())
        outage = [w for w in report.watches if w.poll_failed and not w.failure]
        error = "; ".join(e for w in outage for e in w.errors)
        return _TickResult(report, error, bool(outage) and all(w.unreachable for w in outage))

    def _share_models(self, watches: Sequence[WatchConfig]) -> None:
        """Between ticks, with ``ha``: keep this replica's share of the models (``Leader.rebalance``)."""
        if self._leader is None or not self._leader.member:
            return
        scorer = self._scorer
        self._leader.rebalance([w.model_name for w in watches],
                               busy=lambda model: scorer is not None and scorer.has(model))


def _summary(report: TickReport) -> None:
    registered = sum(len(w.registered) for w in report.watches)
    rejected = sum(len(w.rejected) for w in report.watches)
    scored = sum(len(w.scored) for w in report.watches)
    queued = sum(len(w.queued) for w in report.watches)
    level = log.info if registered or rejected or scored or queued else log.debug
    level("poll_completed", registered=registered, rejected=rejected, scored=scored, scoring_queued=queued,
          ok=report.ok)
