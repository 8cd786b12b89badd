"""Replicas of one fleet sharing the watched models: who is alive, and who should lead what.

Each replica's lock connection carries ``application_name`` ``registry-watcher:<group>:<replica>``
(``ha.group``, default ``default``), so PostgreSQL itself knows the live replicas of a group:
``pg_stat_activity`` lists every session, and a replica that dies (kill -9 closes its socket; a
silent network loss trips the TCP keepalives) vanishes from it together with its advisory locks.
Only sessions of the same group count: another group's watchers, a leftover process of an older
release (``registry-watcher-leader``) or a benchmark on the same database never shrink the shares.

:func:`assign` is a pure, deterministic function of (live replicas, models, who holds what now):
every replica that reads the same snapshot computes the same assignment, each leads ``ceil`` or
``floor`` of the models, a model stays where it is while that is fair, and the rest go by
rendezvous hashing, so a replica joining or leaving moves only the models fairness needs moved.
The advisory locks stay the safety: a model is never led by
two replicas at once, whatever the assignment says while replicas disagree for a poll.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

APP_PREFIX = "registry-watcher"
MAX_APP_NAME = 63
"""PostgreSQL cuts ``application_name`` at 63 bytes (NAMEDATALEN - 1)."""
LIVE_SQL = "SELECT DISTINCT application_name FROM pg_stat_activity WHERE starts_with(application_name, %s)"
"""The live sessions of one group (its prefix as the parameter)."""
HELD_SQL = ("SELECT a.application_name, (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1")
"""Every advisory lock held on the database, as the signed 64-bit key ``lock_key`` makes, with the
``application_name`` of the session holding it."""


def new_replica_id() -> str:
    """A name for this process, unique in the group: host, pid and a random suffix (pids repeat)."""
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def group_prefix(group: str) -> str:
    """The ``application_name`` prefix every replica of ``group`` carries."""
    return f"{APP_PREFIX}:{group}:"


def application_name(group: str, replica: str) -> str:
    """This replica's ``application_name`` (the group is at most 32 characters, so it is never cut)."""
    return (group_prefix(group) + replica)[:MAX_APP_NAME]


def replica_of(name: str, group: str) -> str:
    """The replica part of an ``application_name`` of ``group``."""
    return name[len(group_prefix(group)):]


def _score(replica: str, model: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{replica}\x00{model}".encode()).digest()[:8], "big")


def _preference(members: Sequence[str], model: str) -> list[str]:
    """The replicas in ``model``'s order of preference (highest rendezvous score first)."""
    return sorted(members, key=lambda replica: (-_score(replica, model), replica))


def _by_preference_of(replica: str) -> Callable[[str], tuple[int, str]]:
    """Sort key: the models ``replica`` prefers most first."""
    return lambda model: (-_score(replica, model), model)


def assign(replicas: Sequence[str], models: Sequence[str],
           holders: Mapping[str, str] | None = None) -> dict[str, str]:
    """Model -> the replica that should lead it. Each replica gets ``floor`` or ``ceil`` of
    ``len(models) / len(replicas)``; a model stays with the replica that ``holders`` says leads it
    now while that replica is within its share (the ``ceil`` shares go to the replicas holding the
    most), so a replica joining or leaving moves only what fairness needs; every other model goes
    to its most preferred replica (rendezvous hashing) with room left.

    Deterministic: it depends only on the three arguments as sets, so replicas that read the same
    snapshot of PostgreSQL compute the same assignment."""
    members = sorted(set(replicas))
    items = sorted(set(models))
    if not members:
        return {}
    held = {m: r for m, r in (holders or {}).items() if m in set(items) and r in set(members)}
    capacity = _capacities(members, len(items), held)
    placed = _kept(members, held, capacity)
    load = Counter(placed.values())
    rest = [m for m in items if m not in placed]
    ranked = {m: _preference(members, m) for m in rest}
    for model in sorted(rest, key=lambda m: (-_score(ranked[m][0], m), m)):
        replica = next(r for r in ranked[model] if load[r] < capacity[r])
        placed[model] = replica
        load[replica] += 1
    return placed


def _capacities(members: Sequence[str], models: int, held: Mapping[str, str]) -> dict[str, int]:
    """Replica -> how many models it leads: ``floor`` or ``ceil``, the ``ceil`` shares to the
    replicas holding the most now."""
    floor, extra = divmod(models, len(members))
    holding = Counter(held.values())
    by_holding = sorted(members, key=lambda r: (-holding[r], r))
    return {r: floor + (1 if i < extra else 0) for i, r in enumerate(by_holding)}


def _kept(members: Sequence[str], held: Mapping[str, str], capacity: Mapping[str, int]) -> dict[str, str]:
    """What each replica keeps of what it holds, up to its share, its most preferred first."""
    placed: dict[str, str] = {}
    for replica in members:
        kept = sorted((m for m, r in held.items() if r == replica), key=_by_preference_of(replica))
        for model in kept[:capacity[replica]]:
            placed[model] = replica
    return placed
