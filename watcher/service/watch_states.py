"""Each watch's state in this process: ``ok``, ``failed`` (on its own, with its reason) or ``refused``.

One :class:`WatchStates` per process (kept across a reload, in the poller's ``PollState``),
thread-safe: the poll thread writes it (:mod:`watcher.service.bulkheads`), the HTTP server
(``GET /api/v1/watches``, :mod:`watcher.service.watches_api`), ``once`` and the probes read it.

* A watch is ``ok`` from the moment it is in the effective set; ``failed`` from its first failure
  on its own (``watch_failed``, once, with its reason; the gauge ``registry_watcher_watch_up`` at 0)
  until a poll of it goes well again (``watch_recovered``). A failed watch is retried on its own
  backoff (``bulkheads.retry``): :meth:`WatchStates.probe_due` says when.
* ``refused`` watches (another experiment owns the model) are not watches of the effective set:
  they are read from a provider given to :meth:`WatchStates.views` (``WatchSet.refused``).

A watch's key (:func:`watch_key`) is ``<experiment> -> <model>``: the label of its gauge and the
``watch`` field of its events and of the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from watcher.config import RetryConfig, WatchConfig
from watcher.obs import metrics_fleet
from watcher.obs.logs import get_logger
from watcher.obs.redact import redact

log = get_logger("watcher.daemon")
State = Literal["ok", "failed", "refused"]


def watch_key(experiment: str, model: str) -> str:
    """The name of a watch in events, metrics and the API."""
    return f"{experiment} -> {model}"


@dataclass(frozen=True)
class WatchState:
    """One watch as the process sees it now (a value: a new one on each change)."""

    watch: str
    """``<experiment> -> <model>`` (:func:`watch_key`)."""
    model: str
    experiment: str
    experiment_id: str | None
    """None until the experiment was found (or when it cannot be read by name)."""
    state: State
    reason: str | None = None
    """Why it is failed or refused; None when ``ok``."""
    since: float = 0.0
    """Unix time it entered this state."""
    kind: str = ""
    """A failed watch: ``unreadable`` (probed with one ``get_experiment``) or ``error`` (its gates or
    registry writes: retried alone)."""
    held_by: str | None = None
    """``ha``: the replica holding the model's lock, when the leader knows; None otherwise."""
    held_here: bool | None = None
    """``ha``: whether this replica holds it; None without ``ha``."""

    def to_json(self) -> dict[str, object]:
        """The API's shape of one watch (``GET /api/v1/watches``)."""
        return {"watch": self.watch, "model": self.model, "experiment": self.experiment,
                "experiment_id": self.experiment_id, "state": self.state,
                "reason": None if self.reason is None else redact(self.reason),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)) if self.since else None,
                "held_by": self.held_by, "held_here": self.held_here}


@dataclass(frozen=True)
class _Retry:
    failures: int = 0
    not_before: float = 0.0
    """Monotonic time before which the failed watch is held out."""


class WatchStates:
    """Every watch's state and, for a failed one, its own backoff (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._states: dict[str, WatchState] = {}
        self._retries: dict[str, _Retry] = {}
        self._lock = threading.Lock()

    def sync(self, watches: Sequence[WatchConfig]) -> list[str]:
        """The effective watch set now: new watches start ``ok``, dropped ones are forgotten; returns
        the keys of the new ones (their experiments are checked at once)."""
        keys = {watch_key(w.experiment, w.model_name): w for w in watches}
        with self._lock:
            new = [k for k in keys if k not in self._states]
            gone = [k for k in self._states if k not in keys]
            for key in new:
                w = keys[key]
                self._states[key] = WatchState(key, w.model_name, w.experiment, None, "ok", since=self._wall())
            for key in gone:
                del self._states[key]
                self._retries.pop(key, None)
        for key in new:
            metrics_fleet.set_watch_up(key, True)
        for key in gone:
            metrics_fleet.forget_watch(key)
        return new

    def get(self, key: str) -> WatchState | None:
        with self._lock:
            return self._states.get(key)

    def failed_keys(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._states.items() if s.state == "failed"]

    def probe_due(self, key: str) -> bool:
        """Whether a failed watch's next probe or retry may run now (an ``ok`` watch: always)."""
        with self._lock:
            retry = self._retries.get(key)
            return retry is None or self._clock() >= retry.not_before

    def known_id(self, key: str, experiment_id: str | None) -> None:
        """The experiment's id, once found."""
        with self._lock:
            state = self._states.get(key)
            if state is not None and experiment_id is not None and state.experiment_id != experiment_id:
                self._states[key] = replace(state, experiment_id=experiment_id)

    def fail(self, key: str, reason: str, kind: str, retry: RetryConfig, experiment_id: str | None = None) -> float:
        """The watch failed (again): hold it out for its backoff; returns the delay. ``watch_failed``
        is said when it enters the state, ``watch_still_failed`` (debug) after."""
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return 0.0
            before = self._retries.get(key, _Retry())
            delay = retry.delay(before.failures + 1)
            self._retries[key] = _Retry(before.failures + 1, self._clock() + delay)
            entering = state.state != "failed"
            exp_id = experiment_id or state.experiment_id
            self._states[key] = replace(state, state="failed", reason=reason, kind=kind, experiment_id=exp_id,
                                        since=self._wall() if entering else state.since)
        if entering:
            metrics_fleet.set_watch_up(key, False)
            log.error("watch_failed", watch=key, experiment=state.experiment, experiment_id=exp_id, reason=reason,
                      retry_in_seconds=round(delay, 1))
        else:
            log.debug("watch_still_failed", watch=key, reason=reason, retry_in_seconds=round(delay, 1))
        return delay

    def succeed(self, key: str, experiment_id: str | None = None) -> None:
        """A poll of the watch went well: a failed one recovers (``watch_recovered``)."""
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return
            self._retries.pop(key, None)
            recovering = state.state == "failed"
            exp_id = experiment_id or state.experiment_id
            if recovering or exp_id != state.experiment_id:
                now = self._wall()
                self._states[key] = replace(state, state="ok", reason=None, kind="", experiment_id=exp_id,
                                            since=now if recovering else state.since)
        if recovering:
            metrics_fleet.set_watch_up(key, True)
            log.info("watch_recovered", watch=key, experiment=state.experiment, experiment_id=exp_id,
                     failed_seconds=round(now - state.since, 1))

    def views(self, refused: Sequence[WatchState] = (),
              holder: Callable[[str], tuple[str | None, bool | None]] | None = None) -> list[WatchState]:
        """Every watch now, then the ``refused`` ones; ``holder(model)`` (``ha``) gives who holds each."""
        with self._lock:
            states = list(self._states.values())
        if holder is not None:
            held = [(s, *holder(s.model)) for s in states]
            states = [replace(s, held_by=by, held_here=here) for s, by, here in held]
        return [*states, *refused]
