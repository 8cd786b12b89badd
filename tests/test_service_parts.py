"""The process's small parts, without a server: the tick requests' scope coalescing, the backoff,
and ``Leader._orphans`` (which models a replica adopts when their assignee does not watch them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from helpers import captured

from watcher.config import HaConfig, RetryConfig, WatcherConfig
from watcher.engine import TickReport, WatchReport
from watcher.service import poller as polling
from watcher.service.backoff import Backoff
from watcher.service.leader import ORPHAN_ROUNDS, Leader, lock_key
from watcher.service.ticks import FULL_TICK_SHARE, TickRequests


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


# -- scope coalescing ----------------------------------------------------------------------------


def test_a_scoped_request_covers_its_experiments_until_a_full_tick_is_due():
    clock = Clock()
    requests = TickRequests(clock=clock)
    requests.full_tick_started(100)
    requests.request("webhook:run.finished", ["a"])
    assert requests.pending() and requests.asked_for("a") and not requests.asked_for("b")
    assert requests.take() == {"a"}
    assert not requests.pending() and not requests.asked_for("a")
    clock.now += 100 * FULL_TICK_SHARE  # a tick of every watch is due: it overrides the scope
    requests.request("webhook:run.finished", ["a"])
    assert requests.take() is None


def test_scoped_requests_during_a_tick_coalesce_into_their_union():
    clock = Clock()
    requests = TickRequests(clock=clock)
    requests.full_tick_started(100)
    requests.request("webhook:run.finished", ["a"])
    requests.request("webhook:run.finished", ["b", "c"])
    requests.again({"a"})
    assert requests.asked_for("b") and requests.asked_for("c")
    assert requests.take() == {"a", "b", "c"}
    assert requests.take() is None  # nothing asked: a scheduled tick covers every watch


@pytest.mark.parametrize("order", ["scoped first", "full first"])
def test_a_full_request_wins_over_a_scoped_one(order: str):
    requests = TickRequests(clock=Clock())
    requests.full_tick_started(100)
    calls = [("webhook:run.finished", ["a"]), ("reload", None)]
    for reason, experiments in calls if order == "scoped first" else reversed(calls):
        requests.request(reason, experiments)
    assert not requests.asked_for("a")  # the tick asked for covers every watch anyway
    assert requests.take() is None


def test_each_request_kicks_the_scheduler_and_webhook_deliveries_are_counted_once_per_tick():
    kicks: list[int] = []
    requests = TickRequests(kick=lambda: kicks.append(1), clock=Clock())
    requests.request("webhook:model_version_alias.created")
    requests.request("webhook:run.finished", ["a"])
    requests.request("reload")
    requests.again(None)  # a tick that found work: the poll loop runs it, no kick
    assert len(kicks) == 3
    assert requests.take_deliveries() == 2 and requests.take_deliveries() == 0


@dataclass
class FakeTick:
    """Stands for ``reconcile_once``: records what each tick covered; the first one asks for more."""

    during_first: list[tuple[str, list[str] | None]]
    poller: polling.Poller | None = None
    ticks: list[tuple[list[str], bool]] = field(default_factory=list)

    def __call__(self, client, config, *, session, leader, options) -> TickReport:
        self.ticks.append(([w.experiment for w in options.watches], options.scan))
        if len(self.ticks) == 1:
            assert self.poller is not None
            for reason, experiments in self.during_first:
                self.poller.request_tick(reason, experiments)
        report = TickReport()
        report.watches.extend(WatchReport(w.model_name, w.experiment) for w in options.watches)
        return report


def _config() -> WatcherConfig:
    return WatcherConfig.model_validate({
        "tracking_uri": "http://127.0.0.1:9", "poll_interval_seconds": 60,
        "watches": [{"experiment": e, "model_name": f"m_{e}"} for e in ("a", "b", "c")]})


@pytest.mark.parametrize(("during", "second"), [
    ([("webhook:run.finished", ["a"]), ("webhook:run.finished", ["b"])], (["a", "b"], False)),
    ([("webhook:run.finished", ["a"]), ("reload", None)], (["a", "b", "c"], True)),
])
def test_the_poller_runs_one_more_tick_over_what_was_asked_during_the_tick(monkeypatch, during, second):
    fake = FakeTick(during)
    monkeypatch.setattr(polling, "reconcile_once", fake)
    monkeypatch.setattr(polling, "after_poll", lambda *args: "ok")
    state = polling.PollState(requests=TickRequests(clock=Clock()))
    fake.poller = polling.Poller(None, _config(), state=state)  # type: ignore[arg-type] - the tick is faked
    with captured() as logs:
        report = fake.poller.poll()
    assert report is not None and report.ok
    assert fake.ticks == [(["a", "b", "c"], True), second]
    assert [e["deliveries"] for e in logs if e["event"] == "webhook_tick"] == [sum(1 for r, _ in during if r != "reload")]


# -- backoff ---------------------------------------------------------------------------------------


def test_an_outage_is_said_once_and_its_end_with_its_length():
    clock = Clock()
    backoff = Backoff(clock)
    retry = RetryConfig(initial_seconds=5, multiplier=2, max_seconds=60)
    with captured() as logs:
        assert backoff.failed("ConnectionError", unreachable=True, retry=retry) == 5
        assert backoff.waiting()
        clock.now += 5
        assert not backoff.waiting()
        assert backoff.failed("ConnectionError", unreachable=True, retry=retry) == 10
        clock.now += 12
        backoff.succeeded()
    assert [e["event"] for e in logs] == ["tracking_server_unreachable", "poll_failed", "poll_failed",
                                          "tracking_server_recovered"]
    assert {e["log_level"] for e in logs if e["event"] == "poll_failed"} == {"debug"}
    recovered = logs[-1]
    assert recovered["outage_seconds"] == 17.0 and recovered["failed_polls"] == 2
    assert backoff.failures == 0 and not backoff.waiting()


def test_other_failures_are_errors_then_warnings_and_their_end_is_poll_recovered():
    backoff = Backoff(Clock())
    retry = RetryConfig()
    with captured() as logs:
        backoff.failed("HTTP 500", unreachable=False, retry=retry)
        backoff.failed("HTTP 500", unreachable=False, retry=retry)
        backoff.retry_now()
        assert not backoff.waiting() and backoff.failures == 2
        backoff.succeeded()
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("poll_failed", "error"), ("poll_failed", "warning"), ("poll_recovered", "info")]


# -- Leader._orphans -------------------------------------------------------------------------------


def _leader() -> Leader:
    """A leader that never connects: ``_orphans`` is pure bookkeeping over what it is given."""
    return Leader(HaConfig(lock_url="postgresql://nobody@127.0.0.1:9/none"))


def test_a_model_whose_lock_stays_free_is_adopted_after_orphan_rounds():
    leader = _leader()
    plan = {"m": "other", "mine": leader.replica}
    for _ in range(ORPHAN_ROUNDS - 1):
        assert leader._orphans(["m", "mine"], plan, taken=set()) == set()
    assert leader._orphans(["m", "mine"], plan, taken=set()) == {"m"}
    assert leader._adopted == {"m": "other"}


def test_a_lock_taken_in_between_starts_the_count_again():
    leader = _leader()
    plan = {"m": "other"}
    for _ in range(ORPHAN_ROUNDS - 1):
        leader._orphans(["m"], plan, taken=set())
    assert leader._orphans(["m"], plan, taken={lock_key("m")}) == set()  # its assignee took it
    for _ in range(ORPHAN_ROUNDS - 1):
        assert leader._orphans(["m"], plan, taken=set()) == set()
    assert leader._orphans(["m"], plan, taken=set()) == {"m"}


def test_an_adoption_lasts_while_the_assignee_is_the_same_and_ends_when_it_is_mine():
    leader = _leader()
    for _ in range(ORPHAN_ROUNDS):
        leader._orphans(["m"], {"m": "other"}, taken=set())
    leader._held.add("m")  # acquire took it
    taken = {lock_key("m")}
    assert leader._orphans(["m"], {"m": "other"}, taken) == {"m"}  # still adopted: kept
    assert leader._orphans(["m"], {"m": "third"}, taken) == set()  # another assignee: released
    assert leader._orphans(["m"], {"m": leader.replica}, taken) == set()  # assigned to me: not an orphan
    assert "m" not in leader._adopted and "m" not in leader._unheld


def test_a_model_assigned_to_nobody_is_never_adopted():
    leader = _leader()
    for _ in range(ORPHAN_ROUNDS + 2):
        assert leader._orphans(["m"], {}, taken=set()) == set()
