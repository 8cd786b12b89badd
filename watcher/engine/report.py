"""What one tick did: plain dataclasses at the bottom of the import graph.

They are the tick's one output: the engine adds to a watch's report on the tick's thread only (the
steps of a tick return frozen values, and ``runs.decide_page`` records each as it comes; production
reconciliation appends what it did), and the daemon, the CLI and the metrics read them; none of
those modules import each other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.engine.snapshot import Snapshot


@dataclass
class WatchReport:
    """What one tick did for one watch: the tick's one output accumulator. Appended to on the
    tick's thread only, as each step comes back (its verdicts in run order, ``watcher.engine.runs``);
    everything else a tick passes along is frozen (``WatchContext``, ``RunVerdict``, ``Snapshot``)."""

    model_name: str
    experiment: str
    registered: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    scored: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    """Production versions handed to the scoring worker (scored off the poll thread)."""
    errors: list[str] = field(default_factory=list)
    poll_failed: bool = False
    """True when the watch itself failed (server down, 5xx): the daemon backs off."""
    unreachable: bool = False
    """True when that failure was the tracking server not answering (an outage)."""
    standby: bool = False
    """True when another replica holds this model's lock: the watch was skipped (``ha``)."""
    failure: str = ""
    """Why the watch failed on its own (bulkheads): its experiment cannot be read, its gates raised or
    its registry writes failed (a run counted ``run_failed``); empty when it did not. Never an outage."""
    failure_kind: str = ""
    """``unreadable`` (probed with one ``get_experiment``) or ``error`` (retried alone), with ``failure``."""
    experiment_id: str | None = None
    """The watched experiment's id, when the tick knew it."""


@dataclass
class TickReport:
    """What one tick did; ``ok`` is false when any watch or run errored."""

    watches: list[WatchReport] = field(default_factory=list)
    stopped_early: bool = False
    snapshot: Snapshot | None = None
    """The fleet as this tick read it before visiting a watch (None when that read failed); the
    console's view of aliases and experiments between ticks."""

    @property
    def ok(self) -> bool:
        return not any(w.errors for w in self.watches)

    @property
    def poll_failed(self) -> bool:
        return any(w.poll_failed for w in self.watches)

    @property
    def outage(self) -> bool:
        """True when a watch failed for a reason that is not its own (the server, the fleet's read):
        the daemon backs off. A watch failed on its own (``failure``) is retried on its own backoff."""
        return any(w.poll_failed and not w.failure for w in self.watches)

    @property
    def failed_watches(self) -> list[WatchReport]:
        """The watches that failed on their own in this tick (``once`` exits 1 for them)."""
        return [w for w in self.watches if w.failure]

    @property
    def unreachable(self) -> bool:
        """True when every failed watch failed because the tracking server did not answer."""
        failed = [w for w in self.watches if w.poll_failed and not w.failure]
        return bool(failed) and all(w.unreachable for w in failed)

    def then(self, later: TickReport) -> TickReport:
        """This tick followed by ``later`` (one poll that looked again at once): the lists of
        both, the flags of the later one, which says how the poll ended."""
        earlier = {w.model_name: w for w in self.watches}
        for watch in later.watches:
            before = earlier.get(watch.model_name)
            if before is not None:
                for name in ("registered", "rejected", "scored", "queued", "errors"):
                    setattr(watch, name, getattr(before, name) + getattr(watch, name))
        later.stopped_early = later.stopped_early or self.stopped_early
        return later
