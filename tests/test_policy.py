"""The alias policy as a table: recent audit entries, where the alias points, the policy -> the plan.

Pure: no server, no client. ``watcher.engine.policy.decide`` is what the daemon's alias step
executes every tick (``watcher.engine.aliases``).
"""

from __future__ import annotations

import pytest

from watcher.engine.policy import (
    HANDOFF_TIMEOUT_S,
    INTENT_TTL_S,
    Adopt,
    Finish,
    Record,
    Revert,
    Wait,
    decide,
    revert_target,
    settled,
)
from watcher.store.audit import AuditEntry

NOW = 1_800_000_000.0


def entry(version: str | None, status: str = "done", by: str = "alice", action: str = "promote",
          age: float = 10.0, id: str = "") -> AuditEntry:
    start_ms = int((NOW - age) * 1000)
    return AuditEntry(id=id or f"e-{version}-{status}-{by}-{age}", model="m", alias="production", version=version,
                      previous=None, at="", by=by, action=action, reason="", forced=False, status=status,
                      start_ms=start_ms)


PROMOTED_1 = entry("1", age=100)
EXTERNAL_2 = entry("2", by="external", action="observed", age=50)
INTENT_2 = entry("2", status="pending", by="bob", age=5)
STALE_INTENT_3 = entry("3", status="pending", by="carol", age=INTENT_TTL_S + 1)
FRESH_INTENT_3 = entry("3", status="pending", by="carol", age=INTENT_TTL_S - 1)
RUNNING_INTENT_2 = entry("2", status="pending", by="dave", age=5)
"""An intent whose writer (a CLI still running, or on another host) may finish it itself."""
OLD_INTENT_2 = entry("2", status="pending", by="erin", age=HANDOFF_TIMEOUT_S + 1)
GONE = frozenset({INTENT_2.id})
"""Intents whose writing process is known to be gone (computed outside ``decide``)."""

CASES = [
    # id, recent, current, policy, production, expected plan name, abandoned
    ("nothing recorded, nothing set", [], None, "record", True, "nothing", 0),
    ("in line with the last move", [PROMOTED_1], "1", "record", True, "nothing", 0),
    ("promote's intent for where it points, its CLI gone", [PROMOTED_1, INTENT_2], "2", "record", True, "finish", 0),
    ("intent finished even under revert", [PROMOTED_1, INTENT_2], "2", "revert", True, "finish", 0),
    ("promote's intent while its CLI runs: wait", [PROMOTED_1, RUNNING_INTENT_2], "2", "record", True, "wait", 0),
    ("a running promote is never a move to revert", [PROMOTED_1, RUNNING_INTENT_2], "2", "revert", True, "wait", 0),
    ("a running promote is never recorded external", [PROMOTED_1, RUNNING_INTENT_2], "2", "alert", True, "wait", 0),
    ("an intent past the hand-off timeout", [PROMOTED_1, OLD_INTENT_2], "2", "record", True, "finish", 0),
    ("external move, record", [PROMOTED_1], "2", "record", True, "record", 0),
    ("external move, alert", [PROMOTED_1], "2", "alert", True, "record", 0),
    ("external move, revert", [PROMOTED_1], "2", "revert", True, "record+revert", 0),
    ("external removal, record", [PROMOTED_1], None, "record", True, "record", 0),
    ("recorded external not yet undone", [PROMOTED_1, EXTERNAL_2], "2", "revert", True, "revert", 0),
    ("recorded external under record stays", [PROMOTED_1, EXTERNAL_2], "2", "record", True, "nothing", 0),
    ("first look at staging: adopt", [], "4", "alert", False, "adopt", 0),
    ("first look at production: an external move", [], "4", "alert", True, "record", 0),
    ("stale intent never reached: abandon", [PROMOTED_1, STALE_INTENT_3], "1", "record", True, "nothing", 1),
    ("fresh intent not reached yet: wait", [PROMOTED_1, FRESH_INTENT_3], "1", "record", True, "nothing", 0),
    ("stale intent and an external move", [PROMOTED_1, STALE_INTENT_3], "2", "alert", True, "record", 1),
]


@pytest.mark.parametrize(("recent", "current", "policy", "production", "expected", "abandoned"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(recent, current, policy, production, expected, abandoned):
    plan = decide(recent, current, policy, production=production, now=NOW, gone=GONE)
    assert plan.name == expected
    assert len(plan.abandon) == abandoned


def test_plan_details():
    plan = decide([PROMOTED_1, INTENT_2], "2", "record", production=True, now=NOW, gone=GONE)
    assert plan.actions == (Finish(INTENT_2),) and plan.last == PROMOTED_1
    plan = decide([PROMOTED_1], "2", "revert", production=True, now=NOW)
    assert plan.actions == (Record("2", "1"), Revert(None))
    plan = decide([PROMOTED_1, EXTERNAL_2], "2", "revert", production=True, now=NOW)
    assert plan.actions == (Revert(EXTERNAL_2),)
    assert decide([], "4", "alert", production=False, now=NOW).actions == (Adopt("4"),)
    assert decide([PROMOTED_1, STALE_INTENT_3], "1", "record", production=True, now=NOW).abandon == (STALE_INTENT_3,)


@pytest.mark.parametrize(("recent", "current", "policy", "expected"), [
    ([PROMOTED_1], "1", "record", True),
    ([PROMOTED_1], "2", "record", False),
    ([PROMOTED_1, INTENT_2], "1", "record", False),
    ([PROMOTED_1, EXTERNAL_2], "2", "alert", True),
    ([PROMOTED_1, EXTERNAL_2], "2", "revert", False),
    ([], None, "revert", True),
])
def test_settled_is_the_fast_path(recent, current, policy, expected):
    assert settled(recent, current, policy) is expected
    if expected:  # settled means the full decision has nothing to do either
        assert decide(recent, current, policy, production=True, now=NOW).name == "nothing"


def test_revert_target_is_the_newest_own_move():
    assert revert_target([PROMOTED_1, EXTERNAL_2]) == "1"
    assert revert_target([EXTERNAL_2]) is None
    assert revert_target([]) is None


@pytest.mark.parametrize(("intent", "gone", "expected"), [
    (INTENT_2, GONE, Finish(INTENT_2, "process_gone")),
    (RUNNING_INTENT_2, GONE, Wait(RUNNING_INTENT_2)),
    (RUNNING_INTENT_2, frozenset(), Wait(RUNNING_INTENT_2)),
    (OLD_INTENT_2, frozenset(), Finish(OLD_INTENT_2, "timeout")),
    (OLD_INTENT_2, frozenset({OLD_INTENT_2.id}), Finish(OLD_INTENT_2, "process_gone")),
], ids=["gone", "running", "unknown writer (another host)", "timeout", "gone and old: gone"])
def test_the_handoff_says_why_it_finished(intent, gone, expected):
    plan = decide([PROMOTED_1, intent], "2", "record", production=True, now=NOW, gone=gone)
    assert plan.actions == (expected,) and plan.last == PROMOTED_1
