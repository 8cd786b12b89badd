"""The console's memory of the fleet, fed at the end of every tick (:meth:`FleetState.after_tick`).

The poller hands over each tick's report (with the snapshot the tick read: every watched model's
aliases, the watched experiments' ids) and the effective watch set; the state keeps per model what
the last tick said (aliases, the last decision, whether the watch failed) and publishes a new frozen
:class:`~watcher.console.view.FleetView`. A page view reads that view and makes no request: a
decision shows on the console at the end of the tick that made it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TypeVar

from watcher.config import WatchConfig
from watcher.console.view import FleetView, LastDecision, ModelRow, Providers, RefusedWatch
from watcher.engine import TickReport
from watcher.engine.report import WatchReport
from watcher.obs.logs import get_logger
from watcher.obs.redact import redact
from watcher.store.codec import now_iso
from watcher.store.registry import aliases_of

log = get_logger("watcher.console")
T = TypeVar("T")
OTHER_REPLICA = "another replica"


@dataclass(frozen=True)
class _Extras:
    """What the providers said at the end of one tick."""

    states: Mapping[str, tuple[str, str]] | None
    refused: Mapping[str, RefusedWatch] | None
    approvals: Mapping[str, int] | None
    undelivered: Mapping[str, int] | None
    replica: str | None


class FleetState:
    """Per-model memory across ticks and the view built from it (thread-safe: the poll thread
    writes, the HTTP server's threads read)."""

    def __init__(self, providers: Providers | None = None, clock: Callable[[], float] = time.time) -> None:
        self._providers = providers or Providers()
        self._clock = clock
        self._rows: dict[str, ModelRow] = {}
        self._standby: set[str] = set()
        self._lock = threading.Lock()
        self._view = FleetView()

    def current_view(self) -> FleetView:
        """The fleet as of the end of the last tick."""
        return self._view

    def take_tick(self, watches: Sequence[WatchConfig], report: TickReport | None, error: str = "") -> FleetView:
        """A tick ended (``report`` None: it raised ``error``): keep what it said and publish a new view."""
        at = now_iso(int(self._clock() * 1000))
        extras = self._extras()
        with self._lock:
            self._keep_tick(watches, report, error, at)
            self._view = self._publish_view(extras, at)
            return self._view

    def note_decision(self, model_name: str, decision: LastDecision) -> None:
        """A model page read a newer decision than the state knew (after a restart): keep it."""
        with self._lock:
            row = self._rows.get(model_name)
            if row is None or (row.last is not None and row.last.at >= decision.at):
                return
            self._rows[model_name] = replace(row, last=decision)
            view = self._view
            rows = tuple(replace(r, last=decision) if r.name == model_name and r.state != "refused" else r
                         for r in view.rows)
            self._view = replace(view, rows=rows, version=view.version + 1,
                                 by_name=MappingProxyType({r.name: r for r in rows if r.state != "refused"}))

    def _keep_tick(self, watches: Sequence[WatchConfig], report: TickReport | None, error: str, at: str) -> None:
        wanted = {w.model_name: w for w in watches}
        for gone in set(self._rows) - set(wanted):
            del self._rows[gone]
        snap = report.snapshot if report is not None else None
        for name, watch in wanted.items():
            row = self._rows.get(name) or ModelRow(name, watch.experiment)
            row = replace(row, experiment=watch.experiment, staging_alias=watch.staging_alias,
                          production_alias=watch.production_alias)
            if snap is not None and name in snap.models:
                row = replace(row, aliases=MappingProxyType(aliases_of(snap.models[name])),
                              experiment_id=snap.experiment_ids.get(watch.experiment, row.experiment_id))
            if report is None:
                row = replace(row, state="failed", reason=redact(error))
            self._rows[name] = row
        for wr in report.watches if report is not None else ():
            if wr.model_name in self._rows:
                self._rows[wr.model_name] = self._from_report(self._rows[wr.model_name], wr, at)

    def _from_report(self, row: ModelRow, wr: WatchReport, at: str) -> ModelRow:
        if wr.standby:
            self._standby.add(row.name)
            return row
        self._standby.discard(row.name)
        failure = getattr(wr, "failure", "")  # a watch failed on its own (bulkheads), else the poll's outage
        if failure or wr.poll_failed:
            row = replace(row, state="failed", reason=redact(failure or "; ".join(wr.errors) or "the watch failed"))
        else:
            row = replace(row, state="ok", reason="")
        if wr.registered:
            run_id, version = wr.registered[-1]
            row = replace(row, last=LastDecision(run_id, "registered", f"v{version}", at))
        elif wr.rejected:
            run_id, reason = wr.rejected[-1]
            row = replace(row, last=LastDecision(run_id, "rejected", redact(reason), at))
        return row

    def _extras(self) -> _Extras:
        p = self._providers
        return _Extras(_provided(p.watch_states, "watch_states"), _provided(p.refused, "refused"),
                       _provided(p.approvals, "approvals"), _provided(p.undelivered, "undelivered"),
                       _provided(p.replica, "replica"))

    def _publish_view(self, extras: _Extras, at: str) -> FleetView:
        rows = [self._decorate(row, extras) for row in self._rows.values()]
        by_name = {r.name: r for r in rows}
        for refusal in (extras.refused or {}).values():
            owner = by_name.get(refusal.model_name)
            rows.append(ModelRow(refusal.model_name, refusal.experiment, aliases=owner.aliases if owner else {},
                                 state="refused", reason=redact(refusal.reason)))
        columns = {name for name, there in (("approvals", extras.approvals is not None),
                                             ("events", extras.undelivered is not None),
                                             ("replica", extras.replica is not None)) if there}
        rows.sort(key=lambda r: r.rank)
        return FleetView(tuple(rows), self._view.version + 1, at, frozenset(columns), MappingProxyType(by_name))

    def _decorate(self, row: ModelRow, extras: _Extras) -> ModelRow:
        if extras.states is not None and row.name in extras.states:
            state, reason = extras.states[row.name]
            row = replace(row, state=state, reason=redact(reason))
        return replace(
            row,
            pending_approvals=(extras.approvals or {}).get(row.name, 0) if extras.approvals is not None else None,
            undelivered=(extras.undelivered or {}).get(row.name, 0) if extras.undelivered is not None else None,
            replica=None if extras.replica is None else OTHER_REPLICA if row.name in self._standby else extras.replica)


def _provided(provider: Callable[[], T] | None, name: str) -> T | None:
    """A provider's answer; None when there is none or it failed (the column then shows nothing)."""
    if provider is None:
        return None
    try:
        return provider()
    except Exception as exc:  # noqa: BLE001 - another part's data must never stop the console
        log.warning("console_provider_failed", provider=name, error=f"{type(exc).__name__}: {exc}")
        return None
