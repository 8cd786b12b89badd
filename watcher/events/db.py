"""The outbox's database: an embedded SQLite file (one replica), or the PostgreSQL of ``ha``.

One small interface over both (:class:`Database`: ``run(sql, params)`` with ``?`` placeholders,
rewritten to ``%s`` for PostgreSQL), and the per-output delivery lock (:class:`OutputLock`): a
PostgreSQL session advisory lock per output, so under ``ha`` each output is delivered by one replica
at a time; always held with SQLite (a single replica by definition).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

from watcher.obs.logs import get_logger

log = get_logger("watcher.events")
Row = tuple[Any, ...]
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rw_event_outbox (
        output TEXT NOT NULL, id TEXT NOT NULL, model TEXT NOT NULL, sequence TEXT NOT NULL,
        type TEXT NOT NULL, time_ms BIGINT NOT NULL, event TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        replay INTEGER NOT NULL DEFAULT 0, first_attempt_ms BIGINT, next_attempt_ms BIGINT NOT NULL DEFAULT 0,
        last_error TEXT, created_ms BIGINT NOT NULL, done_ms BIGINT, PRIMARY KEY (output, id))""",
    "CREATE INDEX IF NOT EXISTS rw_event_outbox_state ON rw_event_outbox (output, state, model, sequence)",
    """CREATE TABLE IF NOT EXISTS rw_event_outputs (
        output TEXT PRIMARY KEY, first_seen_ms BIGINT NOT NULL, disabled TEXT)""",
)


class Database(Protocol):
    """Run one statement (``?`` placeholders); the rows it returns (empty for a write)."""

    def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def statements(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self) -> None: ...


class SqliteDatabase:
    """A SQLite file in WAL mode; a connection per statement (threads and the CLI share the file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        with closing(self._open()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.commit()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: safe from a kill -9; no fsync per delivery state write
        return conn

    def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with closing(self._open()) as conn:
            return list(conn.execute(sql, tuple(params)).fetchall())

    def statements(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with closing(self._open()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [tuple(r) for r in rows])
            conn.execute("COMMIT")

    def close(self) -> None:
        """Nothing held between statements."""


class PostgresDatabase:
    """The ``ha`` lock database; one connection (autocommit), reopened after a failure."""

    def __init__(self, url: str, connect_timeout: int = 5) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._conn: Any = None
        self._lock = threading.Lock()
        for statement in SCHEMA:
            self.statement(statement)

    def _session(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout,
                                         application_name="registry-watcher-events")
        return self._conn

    def statement(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            try:
                cursor = self._session().execute(sql.replace("?", "%s"), tuple(params))
                return list(cursor.fetchall()) if cursor.description is not None else []
            except Exception:
                self._reset()
                raise

    def statements(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            try:
                conn = self._session()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
            except Exception:
                self._reset()
                raise

    def _reset(self) -> None:
        _close_quietly(self._conn)
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._reset()


def _close_quietly(conn: Any) -> None:
    """Close a database connection that may already be broken."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001, S110 - already broken
            pass


def output_lock_key(output: str) -> int:
    """The advisory lock key of an output: a stable signed 64-bit integer (never Python's ``hash``)."""
    digest = hashlib.sha256(f"registry-watcher-events:{output}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class OutputLock:
    """Who delivers an output: under ``ha`` the replica holding its advisory lock (its own session,
    so the lock goes when the replica dies); without, always this process."""

    def __init__(self, url: str | None, output: str, connect_timeout: int = 5) -> None:
        self._url = url
        self._output = output
        self._timeout = connect_timeout
        self._conn: Any = None

    def held(self) -> bool:
        """Take or keep the lock; False while another replica holds it or the database is down."""
        if self._url is None:
            return True
        try:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute("SELECT 1").fetchone()
                return True
            import psycopg

            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout,
                                         application_name=f"registry-watcher-events:{self._output}"[:63])
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (output_lock_key(self._output),)).fetchone()
            if row is not None and row[0]:
                log.info("events_output_lock_acquired", output=self._output)
                return True
        except Exception as exc:  # noqa: BLE001 - the database is down: not held, tried again later
            log.debug("events_output_lock_failed", output=self._output, error=f"{type(exc).__name__}: {exc}")
        self.release()
        return False

    def release(self) -> None:
        """Drop the session (and the lock with it)."""
        _close_quietly(self._conn)
        self._conn = None


def open_database(path: str, lock_url: str | None) -> Database:
    """PostgreSQL (``ha.lock_url``) when given, else the SQLite file at ``path``."""
    return PostgresDatabase(lock_url) if lock_url else SqliteDatabase(path)
