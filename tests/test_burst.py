"""A burst decided in parallel (``workers``): exactly once, staging moved once to the newest run,
and every named crash point inside the concurrent phases repaired without a duplicate."""

from __future__ import annotations

import pytest
from helpers import SimulatedCrash, captured, crash_at, decision, events, staging, train, versions_of

from watcher.engine import Session, reconcile_once
from watcher.store import keys as state

pytestmark = [pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)]  # logic: in-process SQLite
VARIANTS = ["good", "good", "shuffled", "good", "good", "extra_feature", "good", "good", "good", "no_recall"]


def _burst(experiment: str) -> list[str]:
    return [train(experiment, variant, seed=seed) for seed, variant in enumerate(VARIANTS)]


def _assert_exactly_once(client, model: str, runs: list[str]) -> None:
    passing = [r for r, v in zip(runs, VARIANTS) if v == "good"]
    for run_id, variant in zip(runs, VARIANTS):
        tags = decision(client, run_id)
        assert tags[state.DECISION] == ("registered" if variant == "good" else "rejected"), (variant, tags)
        assert len(versions_of(client, model, run_id)) == (1 if variant == "good" else 0)
    assert len(versions_of(client, model)) == len(passing)
    newest = max(passing, key=lambda r: client.get_run(r).info.end_time)
    assert staging(client, model) == str(versions_of(client, model, newest)[0].version)


def test_a_burst_is_decided_in_parallel_with_one_staging_move(client, make_config, names):
    config = make_config(workers=4)
    runs = _burst(names["experiment"])
    with captured() as logs:
        report = reconcile_once(client, config, session=Session())
    assert report.ok and len(report.watches[0].registered) == 7 and len(report.watches[0].rejected) == 3
    _assert_exactly_once(client, names["model"], runs)
    assert len(events(logs, "staging_alias_moved")) == 1  # once per page, not once per run
    assert len(events(logs, "run_registered")) == 7
    assert {e["run_id"] for e in events(logs, "run_registered")} == {r for r, v in zip(runs, VARIANTS) if v == "good"}


@pytest.mark.parametrize("point", ["after_create", "after_alias", "after_decision"])
def test_a_crash_inside_a_parallel_burst_is_repaired_exactly_once(client, make_config, names, point):
    config = make_config(workers=4)
    runs = _burst(names["experiment"])
    with pytest.raises(SimulatedCrash):
        reconcile_once(client, config, session=Session(), crash=crash_at(point))
    assert reconcile_once(client, config, session=Session()).ok
    _assert_exactly_once(client, names["model"], runs)


def test_a_backlog_longer_than_a_page_is_drained_in_one_tick(client, make_config, names):
    """Decided runs leave the server-side result set as the tick goes: no page may be skipped."""
    config = make_config(workers=4, page_size=3)
    runs = _burst(names["experiment"])
    report = reconcile_once(client, config, session=Session())
    assert report.ok and len(report.watches[0].registered) == 7 and len(report.watches[0].rejected) == 3
    _assert_exactly_once(client, names["model"], runs)
