"""Leader election on PostgreSQL: of several replicas, only the one holding a model's lock acts.

Each watched registered model has a PostgreSQL *session* advisory lock, keyed on a stable 64-bit
signed integer: the first 8 bytes of ``sha256("registry-watcher:" + model name)`` (never Python's
``hash()``, which differs per process). The locks are taken with ``pg_try_advisory_lock`` on one
dedicated autocommit connection with TCP keepalives, so PostgreSQL frees them as soon as the
holder's process dies (kill -9 closes the socket) or, for a silent network loss, after the
keepalive probes fail.

* :meth:`Leader.acquire` is called before each watch, every poll: it checks the connection with
  ``SELECT 1`` (reconnecting when it is gone) and tries the lock when not held. A standby logs
  ``standby`` once per model (info) and nothing per run.
* :meth:`Leader.holds` is the check right before a write (before each undecided run, each cursor
  move and the production step): a ``SELECT 1`` on the lock connection. When it fails, every lock
  is considered lost at once: ``leadership_lost`` (error) per model, and the engine stops writing.
* :meth:`Leader.rebalance` (the daemon calls it between ticks) shares the models among the live
  replicas of ``ha.group`` (``watcher.service.membership``): this replica keeps its share, releases
  the locks of the others with ``pg_advisory_unlock`` (never one whose scoring is in hand), and
  ``acquire`` then tries only its share. A model whose lock nobody held for ``ORPHAN_ROUNDS``
  rebalances (a replica that does not watch it was assigned it) is adopted. Without ``rebalance``
  (``once``) a replica takes any free lock, as a single replica does.
* ``watcher.obs.metrics.set_leader(model, bool)`` follows every change.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from watcher.config import HaConfig, WatcherConfig
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.service.membership import (
    HELD_SQL,
    LIVE_SQL,
    application_name,
    assign,
    group_prefix,
    new_replica_id,
    replica_of,
)

log = get_logger("watcher.leader")
KEY_NAMESPACE = b"registry-watcher:"
ORPHAN_ROUNDS = 5
"""Rebalances a model's lock must stay free before a replica it was not assigned to adopts it."""


def lock_key(model_name: str) -> int:
    """The advisory lock key of a registered model: a stable signed 64-bit integer."""
    digest = hashlib.sha256(KEY_NAMESPACE + model_name.encode("utf-8")).digest()
    key: int = struct.unpack(">q", digest[:8])[0]
    return key


class Leader:
    """One replica's side of the election, for every model it watches (thread-safe)."""

    def __init__(self, config: HaConfig, *, member: bool = True) -> None:
        self._config = config
        self._member = member
        self._replica = new_replica_id()
        self._members: list[str] = []
        self._wanted: set[str] | None = None
        self._adopted: dict[str, str] = {}
        self._unheld: dict[str, int] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[str] = set()
        self._holders: dict[str, str] = {}  # model -> its lock's holder at the last rebalance (replaced whole)
        self._standby_logged: set[str] = set()
        self._lock = threading.RLock()
        self._connect_failed = False
        self._db_up: bool | None = None

    @property
    def member(self) -> bool:
        """False for a one-off process (``once``): it is not counted as a replica of the group."""
        return self._member

    @property
    def replica(self) -> str:
        """This replica's name in the group (host, pid, random suffix)."""
        return self._replica

    @property
    def members(self) -> list[str]:
        """The live replicas of the group at the last rebalance (this one included)."""
        with self._lock:
            return list(self._members)

    @property
    def db_up(self) -> bool | None:
        """Whether the lock database answered at the last contact; None before the first one."""
        return self._db_up

    def _set_db_up(self, up: bool) -> None:
        self._db_up = up
        metrics.set_lock_db_up(up)

    def _connect(self) -> psycopg.Connection[Any] | None:
        cfg = self._config
        try:
            conn = psycopg.connect(cfg.lock_url, autocommit=True, connect_timeout=cfg.connect_timeout_seconds,
                                   keepalives=1, keepalives_idle=cfg.keepalives_idle_seconds,
                                   keepalives_interval=cfg.keepalives_interval_seconds,
                                   keepalives_count=cfg.keepalives_count,
                                   application_name=application_name(cfg.group, self._replica) if self._member
                                   else f"registry-watcher-once:{cfg.group}"[:63])
        except Exception as exc:  # noqa: BLE001 - no lock database: act for nothing, retry next poll
            (log.debug if self._connect_failed else log.error)(
                "leader_lock_unreachable", error=f"{type(exc).__name__}: {exc}")
            self._connect_failed = True
            self._set_db_up(False)
            return None
        if self._connect_failed:
            log.info("leader_lock_reachable")
        self._connect_failed = False
        self._set_db_up(True)
        return conn

    def _alive(self) -> bool:
        """``SELECT 1`` on the lock connection; on failure every held lock is lost."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means the session (and its locks) is gone
            self._drop(f"{type(exc).__name__}: {exc}")
            self._set_db_up(False)
            return False
        self._set_db_up(True)
        return True

    def _connected(self) -> bool:
        """The lock connection answers, or a new one was made (a lost one loses its locks first)."""
        if not self._alive():
            self._conn = self._connect()
        return self._conn is not None

    def _drop(self, error: str) -> None:
        for model in sorted(self._held):
            log.error("leadership_lost", model_name=model, error=error,
                      hint="writes for this model stopped; the lock is retried every poll")
            metrics.set_leader(model, False)
        self._held.clear()
        self._standby_logged.clear()
        self._close_connection()

    def acquire(self, model_name: str) -> bool:
        """Before a watch: True when this replica holds (or just took) the model's lock."""
        with self._lock:
            if not self._connected():
                metrics.set_leader(model_name, False)
                return False
            if model_name in self._held:
                return True
            if self._wanted is not None and model_name not in self._wanted:
                return self._standby(model_name)
            assert self._conn is not None
            try:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(model_name),)).fetchone()
            except Exception as exc:  # noqa: BLE001
                self._drop(f"{type(exc).__name__}: {exc}")
                metrics.set_leader(model_name, False)
                return False
            if row and row[0]:
                self._held.add(model_name)
                self._standby_logged.discard(model_name)
                metrics.set_leader(model_name, True)
                log.info("leadership_acquired", model_name=model_name, lock_key=lock_key(model_name))
                return True
            return self._standby(model_name)

    def _standby(self, model_name: str) -> bool:
        metrics.set_leader(model_name, False)
        if model_name not in self._standby_logged:
            self._standby_logged.add(model_name)
            log.info("standby", model_name=model_name, hint="another replica leads it; retried every poll")
        return False

    def rebalance(self, models: Sequence[str], busy: Callable[[str], bool] = lambda _model: False) -> None:
        """Between ticks: keep this replica's share of ``models`` among the live replicas of the
        group and release the rest (unless ``busy``: a scoring in hand is never cut off)."""
        with self._lock:
            if not self._connected():
                return
            group = self._read_group()
            if group is None:
                return
            names, locks = group
            prefix = group_prefix(self._config.group)
            members = sorted({replica_of(name, self._config.group) for name in names} | {self._replica})
            by_key = {lock_key(m): m for m in models}
            holders = {by_key[key]: replica_of(name, self._config.group) for name, key in locks
                       if key in by_key and name.startswith(prefix)}
            self._holders = dict(holders)
            plan = assign(members, models, holders)
            mine = {m for m, owner in plan.items() if owner == self._replica}
            self._wanted = mine | self._orphans(models, plan, {key for _, key in locks})
            for model in sorted(self._held - self._wanted):
                if not busy(model):
                    self._release(model, plan.get(model))
            if members != self._members:
                log.info("replicas_changed", group=self._config.group, replicas=len(members),
                         share=len(mine), models=len(plan))
                self._members = members

    def _read_group(self) -> tuple[list[str], list[tuple[str, int]]] | None:
        """The live sessions of the group and every advisory lock held (holder's name, key); None
        when the session is gone (every lock with it)."""
        assert self._conn is not None
        try:
            names = [str(row[0]) for row in self._conn.execute(LIVE_SQL, (group_prefix(self._config.group),)).fetchall()]
            locks = [(str(row[0] or ""), int(row[1])) for row in self._conn.execute(HELD_SQL).fetchall()]
        except Exception as exc:  # noqa: BLE001 - the session is gone: every lock with it
            self._drop(f"{type(exc).__name__}: {exc}")
            self._set_db_up(False)
            return None
        return names, locks

    def _orphans(self, models: Sequence[str], plan: dict[str, str], taken: set[int]) -> set[str]:
        """Models assigned elsewhere whose lock stayed free for ORPHAN_ROUNDS rebalances (their
        assignee does not watch them); an adoption lasts while the same replica is the assignee."""
        adopted = set()
        for model in models:
            owner = plan.get(model)
            if owner == self._replica:
                self._unheld.pop(model, None)
                self._adopted.pop(model, None)
            elif model in self._held:
                if self._adopted.get(model) == owner:
                    adopted.add(model)
            elif lock_key(model) in taken:
                self._unheld.pop(model, None)
            else:
                self._unheld[model] = self._unheld.get(model, 0) + 1
                if self._unheld[model] >= ORPHAN_ROUNDS and owner is not None:
                    self._adopted[model] = owner
                    adopted.add(model)
        return adopted

    def _release(self, model: str, to: str | None) -> None:
        """Give a model's lock up (between ticks): its assignee takes it on its next poll."""
        assert self._conn is not None
        try:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(model),))
        except Exception as exc:  # noqa: BLE001 - the session is gone, and the lock with it
            self._drop(f"{type(exc).__name__}: {exc}")
            return
        self._held.discard(model)
        self._adopted.pop(model, None)
        metrics.set_leader(model, False)
        log.info("leadership_released", model_name=model, to_replica=to, reason="rebalance")

    def holder_of(self, model_name: str) -> str | None:
        """The replica holding the model's lock as last seen (this one when it holds it), no query; None: unknown."""
        return self._replica if model_name in self._held else self._holders.get(model_name)

    def holds_now(self, model_name: str) -> bool:
        """Whether this replica holds the model's lock as last known (no query: for reports)."""
        return model_name in self._held

    def holds(self, model_name: str) -> bool:
        """Right before a write: True while the model's lock is held and its connection answers."""
        with self._lock:
            return model_name in self._held and self._alive()

    def backend_pid(self) -> int | None:
        """PostgreSQL backend pid of the lock connection (for operators and tests)."""
        with self._lock:
            return self._conn.info.backend_pid if self._conn is not None else None

    def close(self) -> None:
        """Release every lock by closing the session (a clean shutdown hands over at once)."""
        with self._lock:
            for model in self._held:
                metrics.set_leader(model, False)
            self._held.clear()
            self._wanted = None
            self._close_connection()

    def _close_connection(self) -> None:
        """Close the lock session (PostgreSQL frees every lock it held); never raises."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001, S110 - already broken: closed either way
                pass
        self._conn = None


def make_leader(config: WatcherConfig, *, member: bool = True) -> Leader | None:
    """The replica's :class:`Leader` when the config has an ``ha`` block, else None; ``member``
    False for a one-off pass (``once``), which is not counted among the group's replicas."""
    return Leader(config.ha, member=member) if config.ha is not None else None
