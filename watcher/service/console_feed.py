"""What the console shows beside the tick's report, read from the other parts of the process.

:func:`console_providers` adapts them to :class:`watcher.console.Providers` (each a callable
answering from memory): the watch states and refusals (``Poller.watch_states``, issue 26), the
pending approvals (the approvals board, issue 27), the undelivered outgoing events (issue 28) and,
under ``ha``, this replica's name. A part that is absent (no approvals, no events block) answers
None, and its column is not shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watcher.console import Providers, RefusedWatch
from watcher.service.leader import Leader
from watcher.service.watch_states import WatchState


def console_providers(states: Callable[[], list[WatchState]], leader: Callable[[], Leader | None],
                      approvals: Callable[[], Any], events: Callable[[], Any]) -> Providers:
    """The console's providers over the process's parts (each looked up at every tick: a reload
    may replace them)."""

    def watch_states() -> Mapping[str, tuple[str, str]]:
        return {s.model: (s.state, s.reason or "") for s in states() if s.state != "refused"}

    def refused() -> Mapping[str, RefusedWatch]:
        return {s.experiment: RefusedWatch(s.experiment, s.model, s.reason or "refused")
                for s in states() if s.state == "refused"}

    def pending(part: Callable[[], Any]) -> Callable[[], Mapping[str, int] | None]:
        def read() -> Mapping[str, int] | None:
            found = part()
            return None if found is None else dict(found.pending_by_model())
        return read

    def replica() -> str | None:
        held = leader()
        return None if held is None else held.replica

    return Providers(watch_states=watch_states, refused=refused, approvals=pending(approvals),
                     undelivered=pending(events), replica=replica)
