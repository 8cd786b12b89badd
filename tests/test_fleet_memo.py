"""The fleet memo (``watcher.engine.fleet_memo``) and the quiet watches (``watcher.engine.quiet``), as pure unit tests with a fake registry: the
models kept across ticks and re-read in a rolling window, and the quiet watches not visited while
nothing they read changed (any change visits them again). The end-to-end behaviour with a real
server is ``tests/test_fleet_reads.py``'s; the cost is ``bench/bench_fleet.py``'s."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from mlflow.entities.model_registry import RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from mlflow.store.entities.paged_list import PagedList

from watcher.config import ApprovalConfig, ScoringConfig, WatchConfig
from watcher.engine import fleet_memo
from watcher.engine.fleet_memo import ModelCache
from watcher.engine.report import WatchReport
from watcher.engine.session import Session
from watcher.engine.snapshot import Snapshot
from watcher.store import keys


class FakeRegistry:
    """``search_registered_models`` over a dict; records the names each call asked for."""

    tracking_uri = "http://fake"

    def __init__(self, names: list[str]) -> None:
        self.tags: dict[str, dict[str, str]] = {n: {} for n in names}
        self.aliases: dict[str, dict[str, str]] = {n: {} for n in names}
        self.asked: list[set[str]] = []

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        names = set(self.tags) if filter_string is None else {
            n.strip().strip("'") for n in filter_string.removeprefix("name IN (").removesuffix(")").split(",")}
        self.asked.append(names)
        return PagedList([RegisteredModel(n, tags=[RegisteredModelTag(k, v) for k, v in self.tags[n].items()],
                                          aliases=[RegisteredModelAlias(a, v) for a, v in self.aliases[n].items()])
                          for n in sorted(names) if n in self.tags], None)


def _tick(cache: ModelCache, client: FakeRegistry, names: set[str], busy: set[str] | None = None) -> frozenset[str]:
    done = cache.fill(client, names)  # type: ignore[arg-type]
    return cache.refresh(client, names, busy or set(), done)  # type: ignore[arg-type]


def test_a_small_fleet_is_read_whole_every_tick() -> None:
    names = {f"m{i}" for i in range(5)}
    client, cache = FakeRegistry(sorted(names)), ModelCache()
    for _ in range(3):
        assert _tick(cache, client, names) == names
    assert client.asked == [names, names, names]  # the first tick's fill, then one read per tick


def test_a_large_fleet_is_read_in_a_rolling_window_plus_the_models_with_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_memo, "MODEL_WINDOW", 2)
    names = {f"m{i}" for i in range(5)}
    client, cache = FakeRegistry(sorted(names)), ModelCache()
    assert _tick(cache, client, names) == names  # the first tick reads them all, once
    assert len(client.asked) == 1
    seen: set[str] = set()
    for _ in range(3):  # ceil(5 / 2) ticks: every model re-read
        read = _tick(cache, client, names)
        assert len(read) == 2
        seen |= read
    assert seen == names
    cache.dirty.add("m4")
    assert {"m4", "m0"} <= _tick(cache, client, names, busy={"m0"})  # dirty and busy ones come along
    assert "m4" not in cache.dirty


def test_a_read_that_shows_a_change_bumps_the_models_generation() -> None:
    names = {"m0", "m1"}
    client, cache = FakeRegistry(sorted(names)), ModelCache()
    _tick(cache, client, names)
    before = dict(cache.generation)
    _tick(cache, client, names)
    assert cache.generation == before  # the same tags and aliases: the same generation
    client.aliases["m1"]["production"] = "3"
    _tick(cache, client, names)
    assert cache.generation["m1"] == before["m1"] + 1 and cache.generation["m0"] == before["m0"]
    del client.tags["m0"], client.aliases["m0"]  # deleted outside the watcher
    _tick(cache, client, names)
    assert "m0" not in cache.models and cache.generation["m0"] == before["m0"] + 1


class Visits:
    def __init__(self) -> None:
        self.count = 0
        self.report = WatchReport("m", "e")

    def __call__(self) -> WatchReport:
        self.count += 1
        return self.report


@pytest.fixture
def quiet() -> tuple[Session, FakeRegistry, WatchConfig]:
    session, client = Session(), FakeRegistry(["m"])
    watch = WatchConfig(experiment="e", model_name="m")
    _tick(session.models, client, {"m"})
    session.migrated.add(("m", watch.production_alias))
    return session, client, watch


def _visit(session: Session, watch: WatchConfig, visits: Visits, *, busy: frozenset[str] = frozenset(),
           asked: bool = False, ha: bool = False) -> WatchReport:
    snap = Snapshot(MappingProxyType(session.models.view({"m"})), MappingProxyType({"e": "1"}), busy)
    quiet = session.quiet.quiet(None, watch, snap, asked=lambda _: asked, ha=ha)  # type: ignore[arg-type]
    return quiet if quiet is not None else session.quiet.visited(watch, visits)


def test_a_watch_whose_visit_did_nothing_is_not_visited_while_nothing_changes(quiet) -> None:  # noqa: ANN001
    session, _, watch = quiet
    visits = Visits()
    _visit(session, watch, visits)
    report = _visit(session, watch, visits)
    _visit(session, watch, visits)
    assert visits.count == 1 and (report.model_name, report.experiment) == ("m", "e") and not report.errors


def test_any_change_of_what_a_quiet_watch_reads_visits_it_again(quiet) -> None:  # noqa: ANN001
    session, client, watch = quiet
    visits = Visits()
    _visit(session, watch, visits)
    expected = 1
    for change in ("busy", "asked", "ha", "model", "audit", "settings"):
        kwargs: dict = {"busy": frozenset({"1"})} if change == "busy" else {change: True} \
            if change in ("asked", "ha") else {}
        if change == "model":
            client.aliases["m"]["production"] = "2"
            _tick(session.models, client, {"m"})
        if change == "audit":
            session.audit.touch("m", "production")
        if change == "settings":
            watch = WatchConfig(experiment="e", model_name="m", production_policy="alert")
        _visit(session, watch, visits, **kwargs)
        expected += 1
        assert visits.count == expected, change
        _visit(session, watch, visits, **kwargs)  # a change seen once: quiet again; a lasting cause: visited
        expected += change in ("busy", "asked", "ha")
        assert visits.count == expected, change


def test_a_watch_that_did_something_is_visited_again_and_its_model_read(quiet) -> None:  # noqa: ANN001
    session, _, watch = quiet
    visits = Visits()
    visits.report = WatchReport("m", "e", rejected=[("run", "recall below 0.9")])
    _visit(session, watch, visits)
    assert "m" in session.models.dirty
    _visit(session, watch, visits)
    assert visits.count == 2


def test_watches_with_an_approval_board_or_a_scoring_failure_are_always_visited(quiet) -> None:  # noqa: ANN001
    session, client, watch = quiet
    visits = Visits()
    approving = watch.model_copy(update={"approval": ApprovalConfig(required=1, approvers=["ana"])})
    _visit(session, approving, visits)
    _visit(session, approving, visits)
    assert visits.count == 2
    client.tags["m"][keys.SCORING_FAILURE] = "{}"
    _tick(session.models, client, {"m"})
    scoring = watch.model_copy(update={"scoring": ScoringConfig(input="x")})
    _visit(session, scoring, visits)
    _visit(session, scoring, visits)
    assert visits.count == 4
