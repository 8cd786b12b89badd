"""Replicas that share the fleet (``ha.group``): each leads its fair share, a dead one's models are
led again within a few polls, and no model is ever led twice.

Pure: the assignment. Against this machine's PostgreSQL: three :class:`Leader` objects (each its
own lock session, as three replicas have) over twelve models, one of them a separate process that
is killed with SIGKILL. A round is what a daemon does every poll: ``rebalance`` between ticks, then
``acquire`` before each watch.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from watcher.config import HaConfig
from watcher.service.leader import Leader
from watcher.service.membership import assign

TESTS = Path(__file__).parent
LOCK_URL = "postgresql://postgres@127.0.0.1:5432/test"
MODELS = [f"fleet_model_{i:02d}_{uuid.uuid4().hex[:6]}" for i in range(12)]



@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("models", [0, 1, 5, 12, 13, 100])
def test_assignment_is_fair_and_complete(replicas, models):
    names = [f"r{i}" for i in range(replicas)]
    placed = assign(names, [f"m{i}" for i in range(models)])
    loads = collections.Counter(placed.values())
    assert len(placed) == models
    assert all(math.floor(models / replicas) <= loads.get(r, 0) <= math.ceil(models / replicas) for r in names)


def test_assignment_depends_on_the_sets_only_and_a_leaver_moves_only_its_own():
    three = assign(["a", "b", "c"], MODELS)
    assert three == assign(["c", "a", "b"], list(reversed(MODELS)))
    two = assign(["a", "b"], MODELS, holders={m: r for m, r in three.items() if r != "c"})  # c's locks died
    assert {m for m in MODELS if three[m] != two[m]} == {m for m in MODELS if three[m] == "c"}
    grown = assign(["a", "b", "c"], MODELS, holders=two)  # c comes back: only fairness moves models
    assert sum(1 for m in MODELS if grown[m] != two[m]) == 4


def test_a_holder_keeps_its_models_while_that_is_fair():
    assert assign(["a", "b"], ["m1"], holders={"m1": "b"}) == {"m1": "b"}
    assert assign(["a", "b"], ["m1"], holders={"m1": "a"}) == {"m1": "a"}
    everything = dict.fromkeys(MODELS, "a")
    placed = assign(["a", "b", "c"], MODELS, holders=everything)
    assert collections.Counter(placed.values()) == {"a": 4, "b": 4, "c": 4}
    assert {m for m in MODELS if placed[m] == "a"} <= set(everything)


def _round(leaders: list[Leader]) -> list[set[str]]:
    for leader in leaders:
        leader.rebalance(MODELS)
    held = [{m for m in MODELS if leader.acquire(m)} for leader in leaders]
    for i, a in enumerate(held):  # never two leaders for one model
        for b in held[i + 1:]:
            assert not a & b
    return held


def _fair(held: list[set[str]], total: int = len(MODELS)) -> bool:
    share = math.ceil(total / len(held))
    return set().union(*held) == set(MODELS) and all(share - 1 <= len(h) <= share + 1 for h in held)


def test_three_replicas_share_twelve_models_and_a_leaver_is_covered(lock_url):
    group = f"t{uuid.uuid4().hex[:8]}"
    leaders = [Leader(HaConfig(lock_url=lock_url, group=group)) for _ in range(3)]
    other = Leader(HaConfig(lock_url=lock_url, group=f"other{uuid.uuid4().hex[:6]}"))
    try:
        other.rebalance(["unrelated_model"])  # another group on the same database: never counted
        rounds = [_round(leaders) for _ in range(3)]
        assert _fair(rounds[-1]), [sorted(h) for h in rounds[-1]]
        assert [len(h) for h in rounds[-1]] == [4, 4, 4]
        assert all(len(leader.members) == 3 for leader in leaders)
        leaders[2].close()  # a clean shutdown: its session ends, and its locks with it
        rounds = [_round(leaders[:2]) for _ in range(3)]
        assert _fair(rounds[-1]) and [len(h) for h in rounds[-1]] == [6, 6]
    finally:
        for leader in [*leaders, other]:
            leader.close()


def test_a_killed_replica_is_covered_within_three_polls(lock_url):
    group = f"k{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, str(TESTS / "replica_proc.py"), "--lock-url", lock_url, "--group", group,
                             "--models", ",".join(MODELS)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])})
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: [lines.append(json.loads(line[5:])) for line in proc.stdout
                                              if line.startswith("HELD ")], daemon=True)
    reader.start()
    leaders = [Leader(HaConfig(lock_url=lock_url, group=group)) for _ in range(2)]
    try:
        for _ in range(60):  # the process joins at its own pace: wait until the three have shared
            held = _round(leaders)
            theirs = set(lines[-1]["held"]) if lines else set()
            if len(leaders[0].members) == 3 and _fair([*held, theirs]):
                break
            threading.Event().wait(0.3)
        else:
            pytest.fail(f"never balanced: {[len(h) for h in held]} + {len(theirs)}")
        assert theirs and not (theirs & (held[0] | held[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_gone(lock_url, lines[-1]["replica"])  # PostgreSQL notices the death (the socket closed)
        rounds = [_round(leaders) for _ in range(3)]
        assert _fair(rounds[-1]) and [len(h) for h in rounds[-1]] == [6, 6], [len(h) for h in rounds[-1]]
    finally:
        proc.kill()
        for leader in leaders:
            leader.close()


def _wait_gone(lock_url: str, replica: str) -> None:
    import psycopg

    with psycopg.connect(lock_url, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                               (f"%{replica}",)).fetchone()
            if row is not None and row[0] == 0:
                return
            threading.Event().wait(0.1)
    pytest.fail(f"PostgreSQL still lists {replica}")


def _until(predicate, timeout: float, what: str):  # noqa: ANN001
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            found = predicate()
            if found:
                return found
            deadline.wait(0.5)
    finally:
        timer.cancel()
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
@pytest.mark.timeout(900)
def test_three_daemons_share_twelve_watches_and_cover_a_kill_9(client, tracking_uri, lock_url, tmp_path):
    """Real daemons on a real server: balanced leadership on /metrics, then kill -9 of one replica;
    its watches are led again and their new runs registered exactly once."""
    from daemon_proc import Daemon, get, metric_value
    from helpers import decision, train, versions_of

    from watcher.store import keys
    from watcher.testing import free_port

    suffix = uuid.uuid4().hex[:6]
    group = f"d{suffix}"
    watches = {f"fleet_m{i:02d}_{suffix}": f"fleet_e{i:02d}_{suffix}" for i in range(12)}
    block = "".join(f"  - {{experiment: {e}, model_name: {m}}}\n" for m, e in watches.items())
    ports = [free_port() for _ in range(3)]
    daemons = []
    for i, port in enumerate(ports):
        path = tmp_path / f"replica{i}.yaml"
        path.write_text(f"tracking_uri: {tracking_uri}\npoll_interval_seconds: 1\n"
                        f"ha: {{lock_url: '{lock_url}', group: {group}}}\n"
                        f"http: {{host: 127.0.0.1, port: {port}}}\nwatches:\n{block}")
        daemons.append(Daemon(path))

    def leads(port: int) -> set[str] | None:
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        if status != 200:
            return None
        return {m for m in watches if metric_value(text, "registry_watcher_leader", model=m) == 1}

    def balanced(live: list[int]) -> list[set[str]] | None:
        held = [leads(port) for port in live]
        if any(h is None for h in held):
            return None
        sets = [h for h in held if h is not None]
        share = math.ceil(len(watches) / len(live))
        fair = all(share - 1 <= len(h) <= share + 1 for h in sets) and set().union(*sets) == set(watches)
        return sets if fair and sum(len(h) for h in sets) == len(watches) else None

    try:
        shares = _until(lambda: balanced(ports), 180, "three replicas to share twelve watches")
        print("shares:", [len(s) for s in shares])
        victim, victims_models = daemons[0], shares[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)
        runs = {m: train(watches[m], rows=200, n_estimators=2, seed=i) for i, m in enumerate(sorted(victims_models))}
        after = _until(lambda: balanced(ports[1:]), 120, "the two survivors to cover every watch")
        assert set().union(*after) == set(watches)
        _until(lambda: all(keys.DECISION in decision(client, r) for r in runs.values()), 120,
               "the dead replica's new runs to be decided")
        for model, run_id in runs.items():
            assert len(versions_of(client, model, run_id)) == 1  # exactly once through the hand-over
    except BaseException:
        for port, daemon in zip(ports, daemons):  # what each replica said, for the failure's report
            print(f"replica on {port}: exit {daemon.proc.poll()}, leads {leads(port)}; last lines:",
                  *daemon.raw[-8:], sep="\n  ")
        raise
    finally:
        for daemon in daemons:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait(timeout=30)
