"""The promote hand-off (issue 18, point 3): the daemon finishes someone else's intent only when the
process that wrote it is gone (same host: its pid, guarded by its start time) or the intent is older
than the hand-off timeout (another host), and ``promotion_completed_by_watcher`` says which. While the
writer runs, the alias's position is the intent's: never an external move, and scoring goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

from conftest import in_process
from helpers import captured, events

from watcher.engine.aliases import reconcile_alias
from watcher.engine.policy import HANDOFF_TIMEOUT_S
from watcher.obs import process
from watcher.obs.process import ProcessId
from watcher.store import audit, keys


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_process_identity_and_gone():
    me = process.current()
    assert me.pid == os.getpid() and me.host
    assert process.is_gone(me) is False
    assert process.is_gone(replace(me, pid=_dead_pid())) is True
    assert process.is_gone(replace(me, started="1")) is True  # same pid, another start: the pid was reused
    assert process.is_gone(replace(me, host=me.host + "-elsewhere")) is None  # unknowable from here
    assert process.is_gone(None) is None


@in_process
def test_daemon_waits_for_a_running_promote_and_finishes_a_dead_ones_intent(client, make_config, names, tmp_path):
    config = make_config()
    watch, model, exp = config.watches[0], names["model"], config.audit_experiment
    client.create_registered_model(model)
    for _ in range(2):
        client.create_model_version(model, source=str(tmp_path), run_id=None)
    audit.record(client, exp, audit.AliasMove(model_name=model, alias="production", version="1", previous=None,
                                              by="alice", action="promote", reason="first"))
    client.set_registered_model_alias(model, "production", "1")

    def settle(now: float | None = None):
        with captured() as logs:
            last, _, current = reconcile_alias(client, watch, client.get_registered_model(model), "production",
                                               "alert", exp, now or time.time())
        return last, current, logs

    # a promote in flight: its intent is written and the alias moved, the CLI (this process) still runs
    intent = audit.begin(client, exp, audit.AliasMove(model_name=model, alias="production", version="2", previous="1",
                                                      by="bob", action="promote", reason="release"))
    assert intent.writer == process.current()
    client.set_registered_model_alias(model, "production", "2")
    last, current, logs = settle()
    assert (last.id, current) == (intent.id, "2")  # the intent's move: scoring is keyed on its id
    assert not events(logs, "promotion_completed_by_watcher") and not events(logs, "protected_alias_moved")
    assert [e.version for e in audit.entries(client, exp, model, "production")] == ["1"]

    # the CLI died after moving the alias: its pid is gone
    client.set_tag(intent.id, keys.AUDIT_PID, str(_dead_pid()))
    last, current, logs = settle()
    done = events(logs, "promotion_completed_by_watcher")
    assert len(done) == 1 and done[0]["reason"] == "process_gone" and done[0]["by"] == "bob"
    assert [e.version for e in audit.entries(client, exp, model, "production")] == ["1", "2"]

    # a rollback from another host: unknowable, so only the timeout finishes it
    other = audit.begin(client, exp, audit.AliasMove(model_name=model, alias="production", version="1", previous="2",
                                                     by="carol", action="rollback", reason="bad"))
    client.set_tag(other.id, keys.AUDIT_HOST, "another-host")
    client.set_registered_model_alias(model, "production", "1")
    assert audit.recent(client, exp, model, "production")[-1].writer == ProcessId(
        "another-host", os.getpid(), process.current().started)
    last, current, logs = settle()
    assert last.id == other.id and not events(logs, "promotion_completed_by_watcher")
    last, current, logs = settle(time.time() + HANDOFF_TIMEOUT_S + 5)
    done = events(logs, "promotion_completed_by_watcher")
    assert len(done) == 1 and done[0]["reason"] == "timeout" and done[0]["writer_host"] == "another-host"
    assert [e.version for e in audit.entries(client, exp, model, "production")] == ["1", "2", "1"]
    assert not events(logs, "protected_alias_moved")
