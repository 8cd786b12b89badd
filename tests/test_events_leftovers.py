"""One fact, one event (issue 28): a staging move interrupted between its audit intent and its finish
(a kill -9, simulated at the crash points) and redone after a restart yields exactly one
``alias.moved`` id; the daemon finishes or abandons its own leftover intents before its first tick;
the engine tells each committed fact at once (the events' live path)."""

from __future__ import annotations

import pytest
from helpers import SimulatedCrash, captured, crash_at, events, staging, train

from watcher.engine import Session, reconcile_once
from watcher.engine.leftovers import settle_leftovers
from watcher.events.facts import committed, decision_event, move_event
from watcher.obs import process
from watcher.store import audit, batch_reads, registry
from watcher.store.audit import AuditEntry
from watcher.store.event_facts import Decision, decided_runs

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)]


def _gone(_writer: object) -> bool:
    return True  # the crashed "process" is this one: its leftovers count as another's


def _move_ids(client, config, model: str) -> list[str]:
    """The ``alias.moved`` ids the events' read of the audit trail derives for ``model``'s staging alias."""
    found = [e for e in batch_reads.audit_since(client, config.audit_experiment, None) if e.model == model]
    aliases = {model: registry.aliases_of(registry.get_model(client, model))}
    return [move_event("t", e).id for e in committed(found, aliases) if e.alias == "staging"]


def _entries(client, config, model: str) -> list[AuditEntry]:
    return audit.entries(client, config.audit_experiment, model, "staging", include=audit.ALL_STATES)


def _settle(client, config, model: str, gone=_gone) -> tuple[list[AuditEntry], list[AuditEntry]]:
    """:func:`settle_leftovers` as the restarted daemon runs it, its results for ``model`` only: ``_gone``
    counts every writer of this process as gone, so the intents other tests of this worker left open
    in the session's store (a crash test's) are settled too."""
    finished, abandoned = settle_leftovers(client, config, gone=gone)
    return [e for e in finished if e.model == model], [e for e in abandoned if e.model == model]


def _told(logs, event: str, model: str) -> list[str]:
    return [e["entry_id"] for e in events(logs, event) if e["model_name"] == model]


@pytest.mark.parametrize("point", ["after_intent", "after_alias"])
def test_a_move_interrupted_and_redone_has_one_event_id(client, make_config, names, point):
    config = make_config()
    train(names["experiment"])
    with pytest.raises(SimulatedCrash):
        reconcile_once(client, config, crash=crash_at(point))
    [left] = _entries(client, config, names["model"])
    assert left.status == "pending"
    with captured() as logs:
        finished, abandoned = _settle(client, config, names["model"])  # the restarted daemon, first
    reconcile_once(client, config, session=Session())  # then its first tick redoes what is left
    reconcile_once(client, config, session=Session())
    states = [e.status for e in _entries(client, config, names["model"])]
    if point == "after_alias":  # the alias points at it: the move stands, finished; nothing redone
        assert [e.id for e in finished] == [left.id] and not abandoned and states == ["done"]
        assert _told(logs, "leftover_intent_finished", names["model"]) == [left.id]
        assert _move_ids(client, config, names["model"]) == [move_event("t", left).id]
    else:  # the alias never moved: abandoned, the redo is the one move
        assert [e.id for e in abandoned] == [left.id] and not finished and states == ["abandoned", "done"]
        assert _told(logs, "leftover_intent_abandoned", names["model"]) == [left.id]
        [redo] = [e for e in _entries(client, config, names["model"]) if e.status == "done"]
        assert _move_ids(client, config, names["model"]) == [move_event("t", redo).id]
    assert staging(client, names["model"]) is not None
    assert _settle(client, config, names["model"]) == ([], [])  # nothing left the second time


def test_an_overtaken_intent_is_no_second_move_even_before_it_is_settled(client, make_config, names):
    """Without the start-up settling (say it failed), the leftover intent of the redone move's version
    is not counted: the newer entry of the alias is the move."""
    config = make_config()
    train(names["experiment"])
    with pytest.raises(SimulatedCrash):
        reconcile_once(client, config, crash=crash_at("after_intent"))
    reconcile_once(client, config, session=Session())
    states = sorted(e.status for e in _entries(client, config, names["model"]))
    assert states == ["done", "pending"]
    assert len(_move_ids(client, config, names["model"])) == 1
    assert _settle(client, config, names["model"], process.is_gone) == ([], [])  # its writer (this process) still runs: not touched


def test_the_engine_tells_each_committed_fact_as_the_read_back_gives_it(client, make_config, names):
    config = make_config()
    good, bad = train(names["experiment"]), train(names["experiment"], "shuffled")
    told: list[AuditEntry | Decision] = []
    reconcile_once(client, config, session=Session(facts=told.append))
    moves = [f for f in told if isinstance(f, AuditEntry)]
    decisions = {f.run_id: f for f in told if isinstance(f, Decision)}
    assert [m.version for m in moves] == [staging(client, names["model"])] and set(decisions) == {good, bad}
    [done] = [e for e in _entries(client, config, names["model"]) if e.status == "done"]
    assert move_event("s", moves[0]) == move_event("s", done)  # the same id, sequence and data
    read = decided_runs(client, [client.get_experiment_by_name(names["experiment"]).experiment_id],
                        run_ids=[good, bad])
    for fact in read:
        assert decision_event("s", decisions[fact.run_id], names["model"]) == decision_event("s", fact, names["model"])


def test_a_told_move_goes_out_after_an_earlier_move_the_feeder_has_not_read(client, make_config, names, tmp_path):
    """A CLI promote (another process: only the feeder's read finds it) recorded just before the
    daemon's staging move: the live path appends both in one batch, so the promote goes out first."""
    from watcher.events.service import EventsService
    from watcher.store.audit import AliasMove

    outbox = tmp_path / "outbox.sqlite"
    config = make_config(events=f"{{outbox_path: '{outbox}', outputs: [{{name: cd, type: http, "
                                "url: 'http://127.0.0.1:9/x'}]}")
    service = EventsService(client, config, lambda: list(config.watches))  # not started: no thread
    try:
        model = names["model"]
        promote = audit.record(client, config.audit_experiment,
                               AliasMove(model, "production", "1", None, "alice", "promote", "ship it"))
        staged = audit.begin(client, config.audit_experiment, AliasMove(model, "staging", "2", "1", "watcher", "stage",
                                                                        "run r passed the gates"))
        events = service._with_earlier([staged])
        assert {e.id for e in events} >= {move_event(service._deriver.source, e).id for e in (promote, staged)}
        service.outbox.append(events, config.events.outputs, {"cd": 0})
        [head] = [h for h in service.outbox.heads("cd") if h.event.model == model]  # other tests' models beside
        assert head.event.id == move_event(service._deriver.source, promote).id  # the earlier fact first
    finally:
        service.outbox.db.close()
