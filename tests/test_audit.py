"""The audit trail against a real mlflow server (SQLite only): nothing trimmed, the legacy tag
carried over once, and the CLI and the daemon never overwrite or misread each other's moves."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers import SimulatedCrash, captured, crash_at, events, train, versions_of

from watcher.cli import main
from watcher.engine import reconcile_once
from watcher.engine.policy import INTENT_TTL_S
from watcher.engine.production import reconcile_production
from watcher.engine.promotion import production_history, promote, rollback
from watcher.engine.report import WatchReport
from watcher.store import audit, codec
from watcher.store import keys as state
from watcher.store.migration import migrate_legacy

pytestmark = [pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)]  # logic: in-process SQLite


def _two_versions(client, config, names) -> tuple[str, str]:
    train(names["experiment"])
    train(names["experiment"], seed=11)
    reconcile_once(client, config)
    v1, v2 = sorted((str(v.version) for v in versions_of(client, names["model"])), key=int)
    return v1, v2


def _production(client, names) -> str | None:
    value = (client.get_registered_model(names["model"]).aliases or {}).get("production")
    return None if value is None else str(value)


def test_thirty_moves_with_long_reasons_come_back_complete_and_in_order(client, make_config, names, tmp_path, capsys):
    config = make_config()
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    reasons = [f"move {i:02d}: " + "r" * 291 for i in range(30)]
    assert all(len(r) == 300 for r in reasons)
    for i, reason in enumerate(reasons):
        if i == 0:
            promote(client, watch, v1, reason, "alice")
        elif i % 2:
            promote(client, watch, v2 if _production(client, names) == v1 else v1, reason, "bob")
        else:
            rollback(client, watch, None, reason, "carol")
    capsys.readouterr()
    assert main(["history", "--config", str(tmp_path / "watcher.yaml"), "--model", names["model"], "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["reason"] for e in entries] == reasons
    assert [e["seq"] for e in entries] == list(range(1, 31))
    assert [e["version"] for e in entries] == [v1 if i % 2 == 0 else v2 for i in range(30)]
    assert [e["action"] for e in entries] == ["promote"] + ["promote" if i % 2 else "rollback" for i in range(1, 30)]
    assert all(e["previous"] == (None if i == 0 else entries[i - 1]["version"]) for i, e in enumerate(entries))
    assert all(e["forced"] is False and e["at"] and e["id"] for e in entries)
    # the daemon sees nothing external in all of that
    with captured() as logs:
        reconcile_once(client, config)
    assert not events(logs, "production_alias_changed") and len(production_history(client, watch)) == 30
    # every move is a run in the audit experiment, visible and searchable by model in the UI
    exp = client.get_experiment_by_name(config.audit_experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`watcher.audit.model` = '{names['model']}'")
    assert all(r.data.tags[state.KIND] == "audit" for r in runs)
    assert sorted(r.data.tags["watcher.audit.alias"] for r in runs) == ["production"] * 30 + ["staging"]  # both runs in one page: one staging move


def test_legacy_history_tag_is_carried_over_exactly_once(client, make_config, names):
    config = make_config()
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    old = [{"seq": 1, "version": v1, "previous": None, "at": "2026-01-05T10:00:00Z", "by": "alice",
            "action": "promote", "reason": "first"},
           {"seq": 2, "version": v2, "previous": v1, "at": "2026-01-05T10:00:00Z", "by": "bob",
            "action": "promote", "reason": "second, same second"},
           {"seq": 3, "version": v1, "previous": v2, "at": "2026-02-01T09:30:00Z", "by": "carol",
            "action": "rollback", "reason": "third"}]
    client.set_registered_model_tag(names["model"], state.HISTORY, codec.dump({"entries": old}))
    client.set_registered_model_alias(names["model"], "production", v1)
    tags = dict(client.get_registered_model(names["model"]).tags)
    with pytest.raises(SimulatedCrash):  # a crash after the first migrated entry
        migrate_legacy(client, config.audit_experiment, names["model"], tags, "production",
                             crash=crash_at("after_migrate_entry"))
    with captured() as logs:
        reconcile_once(client, config)  # the daemon finishes the migration and sees no external move
    assert not events(logs, "production_alias_changed")
    entries = production_history(client, watch)
    assert [(e.version, e.by, e.reason, e.at) for e in entries] == [
        (o["version"], o["by"], o["reason"], o["at"]) for o in old]
    assert [e.legacy_seq for e in entries] == [1, 2, 3]
    assert codec.load(client.get_registered_model(names["model"]).tags[state.AUDIT_MIGRATED])["entries"] == 3
    # idempotent: new moves append after the migrated ones, nothing is written twice
    promote(client, watch, v2, "after the upgrade", "dave")
    reconcile_once(client, config)
    assert [e.reason for e in production_history(client, watch)] == ["first", "second, same second", "third",
                                                                         "after the upgrade"]


def test_cli_promote_during_a_daemon_tick_is_neither_lost_nor_external(client, make_config, names, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.setenv("REGISTRY_WATCHER_USER", "erin")
    config = make_config()
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    promote(client, watch, v1, "baseline", "alice")
    reconcile_once(client, config)
    stale = client.get_registered_model(names["model"])  # the daemon's tick read the model here ...
    assert main(["promote", "--config", str(tmp_path / "watcher.yaml"), "--model", names["model"],
                 "--version", v2, "--reason", "cli while the tick runs"]) == 0  # ... then the CLI promoted
    with captured() as logs:
        reconcile_production(client, watch, stale, WatchReport(names["model"], names["experiment"]),
                             now=time.time(), audit_experiment=config.audit_experiment)
        reconcile_once(client, config)
    assert not events(logs, "production_alias_changed")
    assert [(e.version, e.by) for e in production_history(client, watch)] == [(v1, "alice"), (v2, "erin")]


def test_an_unfinished_intent_is_completed_and_an_abandoned_one_dropped(client, make_config, names):
    config = make_config()
    watch = config.watches[0]
    v1, v2 = _two_versions(client, config, names)
    fields = {"model_name": names["model"], "alias": "production", "previous": None, "by": "frank",
              "action": "promote"}
    # the CLI died after moving the alias, before finishing its entry
    intent = audit.begin(client, config.audit_experiment,
                         audit.AliasMove(version=v1, reason="died after the move", **fields))
    client.set_registered_model_alias(names["model"], "production", v1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client.set_tag(intent.id, state.AUDIT_PID, str(dead.pid))  # the writer (the CLI) is gone
    with captured() as logs:
        reconcile_once(client, config)
    assert events(logs, "promotion_completed_by_watcher")[0]["reason"] == "process_gone"
    assert not events(logs, "production_alias_changed")
    assert [(e.version, e.by) for e in production_history(client, watch)] == [(v1, "frank")]
    # the CLI died before moving the alias: the intent is dropped once it is stale
    audit.begin(client, config.audit_experiment,
                audit.AliasMove(version=v2, reason="died before the move", **{**fields, "previous": v1}))
    reconcile_once(client, config)  # fresh: left alone
    assert [e.status for e in audit.recent(client, config.audit_experiment, names["model"], "production")] == [
        "done", "pending"]
    with captured() as logs:
        reconcile_once(client, config, now=time.time() + INTENT_TTL_S + 60)
    assert events(logs, "promotion_intent_abandoned")
    assert [e.reason for e in production_history(client, watch)] == ["died after the move"]
    # a later hand move to that version is external, not the abandoned intent
    client.set_registered_model_alias(names["model"], "production", v2)
    with captured() as logs:
        reconcile_once(client, config)
    assert events(logs, "production_alias_changed")[0]["by"] == "external"
    assert [e.by for e in production_history(client, watch)] == ["frank", "external"]


def test_reasons_beyond_the_tag_limit_are_cut_with_a_marker(client, make_config, names):
    config = make_config()
    v1, _ = _two_versions(client, config, names)
    promote(client, config.watches[0], v1, "x" * 9000, "alice")
    [entry] = production_history(client, config.watches[0])
    assert state.RUN_TAG_LIMIT - 20 < len(entry.reason) <= state.RUN_TAG_LIMIT and entry.reason.endswith("...[truncated]")
