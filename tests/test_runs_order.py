"""The order of a page's verdicts with ``workers > 1`` (``watcher.engine.runs``), as unit tests.

A rejection is written on the pool, but before a later passing run is registered the rejections
of the runs before it are waited for: a crash or an outage in one surfaces there, and no later run
is registered; the report hears of every verdict in run order. No server: each phase is a fake.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import SimulatedCrash

from watcher.engine import runs
from watcher.engine.report import WatchReport
from watcher.engine.verdicts import RunVerdict


def _run(run_id: str) -> Any:
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, run_name=run_id))


class Page:
    """Fakes of the phases: ``refused``/``passed``/``failed`` by run id; slow rejections."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, states: dict[str, str], slow: set[str],
                 crash: str | None = None) -> None:
        self.states, self.slow, self.crash = states, slow, crash
        self.registered: list[str] = []
        self.lock = threading.Lock()
        monkeypatch.setattr(runs, "_champion", lambda _ctx: None)
        monkeypatch.setattr(runs, "run_gates", self.run_gates)
        monkeypatch.setattr(runs, "reject", self.reject)
        monkeypatch.setattr(runs, "register", self.register)

    def run_gates(self, _ctx: Any, _champion: Any, run: Any) -> RunVerdict:
        state = self.states[run.info.run_id]
        if state == "failed":
            return RunVerdict(run, "retry", error="OSError: disk")
        return RunVerdict(run, "refused" if state == "refused" else "passed")

    def reject(self, _ctx: Any, verdict: RunVerdict, _known: Any) -> RunVerdict:
        if verdict.run_id in self.slow:
            time.sleep(0.3)
        if verdict.run_id == self.crash:
            raise SimulatedCrash("after_tag")
        return replace(verdict, state="rejected", settled=True, reason=f"{verdict.run_id} too low")

    def register(self, _ctx: Any, verdict: RunVerdict, _known: Any) -> RunVerdict:
        with self.lock:
            self.registered.append(verdict.run_id)
        return replace(verdict, state="versioned")

    def decide(self, ids: list[str]) -> tuple[list[RunVerdict], WatchReport]:
        ctx: Any = SimpleNamespace(config=SimpleNamespace(workers=4))
        lookup: Future[dict[str, Any]] = Future()
        lookup.set_result({})
        report = WatchReport("m", "e")
        return runs._check_and_register(ctx, [_run(i) for i in ids], lookup, report), report


def test_a_crash_in_an_earlier_rejection_stops_the_page_before_a_later_run_is_registered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    page = Page(monkeypatch, {"r1": "refused", "r2": "passed", "r3": "passed"}, slow={"r1"}, crash="r1")
    with pytest.raises(SimulatedCrash):
        page.decide(["r1", "r2", "r3"])
    assert page.registered == []


def test_the_report_hears_of_each_verdict_in_run_order(monkeypatch: pytest.MonkeyPatch) -> None:
    states = {"r1": "refused", "r2": "failed", "r3": "refused", "r4": "passed", "r5": "refused"}
    page = Page(monkeypatch, states, slow={"r1"})
    verdicts, report = page.decide(list(states))
    assert [v.run_id for v in verdicts] == list(states)
    assert [v.state for v in verdicts] == ["rejected", "retry", "rejected", "versioned", "rejected"]
    assert report.rejected == [("r1", "r1 too low"), ("r3", "r3 too low"), ("r5", "r5 too low")]
    assert report.errors == ["run r2: OSError: disk"]
    assert page.registered == ["r4"]
