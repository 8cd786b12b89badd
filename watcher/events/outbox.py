"""The outbox: every event owed to every output, and its delivery state, in one table.

A row per (output, event id) (the primary key, so appending the same fact twice is a no-op):
``pending`` (``attempts``, ``first_attempt_ms``, ``next_attempt_ms``, ``last_error``), ``delivered``
or ``dead``. An output's first sight is recorded (``rw_event_outputs.first_seen_ms``): it receives
only the facts from that moment on; ``disabled`` holds the reason of a 410 until ``events enable``.
A redelivery or a replay is a row put back to ``pending`` with ``replay`` + 1 (the same id): the
CLI writes it, the daemon's delivery thread of that output sends it.

Per output, :meth:`Outbox.heads` gives each model's next event (the lowest ``sequence`` pending),
so one model's events go out one at a time, in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from watcher.config.events import OutputBase
from watcher.events.db import Database
from watcher.events.model import OutgoingEvent

STATES = ("pending", "delivered", "dead")
_COLUMNS = ("output, id, model, sequence, type, time_ms, event, state, attempts, replay, first_attempt_ms, "
            "next_attempt_ms, last_error, created_ms, done_ms")


def now_ms() -> int:
    """Epoch milliseconds now."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class OutboxRow:
    """One event owed to one output, and how its delivery stands."""

    output: str
    event: OutgoingEvent
    state: str
    attempts: int
    replay: int
    first_attempt_ms: int | None
    next_attempt_ms: int
    last_error: str | None
    created_ms: int
    done_ms: int | None

    def listed(self) -> dict[str, object]:
        """As ``events list --json`` shows it."""
        return {"output": self.output, "id": self.event.id, "type": self.event.short_type, "model": self.event.model,
                "subject": self.event.subject, "time": self.event.as_json()["time"], "sequence": self.event.sequence,
                "state": self.state, "attempts": self.attempts, "replays": self.replay, "last_error": self.last_error,
                "first_attempt_ms": self.first_attempt_ms, "created_ms": self.created_ms, "done_ms": self.done_ms}


def _row(raw: Sequence[object]) -> OutboxRow:
    output, _id, _model, _seq, _type, _time, event, state, attempts, replay, first, nxt, error, created, done = raw
    return OutboxRow(str(output), OutgoingEvent.from_json(str(event)), str(state), int(str(attempts)),
                     int(str(replay)), None if first is None else int(str(first)), int(str(nxt)),
                     None if error is None else str(error), int(str(created)), None if done is None else int(str(done)))


class Outbox:
    """The outbox over one :class:`~watcher.events.db.Database` (thread-safe: each call is one statement)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- outputs
    def first_seen(self, outputs: Iterable[str], now: int | None = None) -> dict[str, int]:
        """Each output's first sight (recorded now for a new one), in epoch ms."""
        now = now_ms() if now is None else now
        names = list(outputs)
        self.db.statements("INSERT INTO rw_event_outputs (output, first_seen_ms) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(n, now) for n in names])
        return {str(o): int(str(t)) for o, t in self.db.statement("SELECT output, first_seen_ms FROM rw_event_outputs")
                if o in names}

    def disabled(self, output: str) -> str | None:
        """Why the output is disabled (a 410), or None."""
        rows = self.db.statement("SELECT disabled FROM rw_event_outputs WHERE output = ?", (output,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def set_disabled(self, output: str, reason: str | None) -> bool:
        """Disable (``reason``) or enable (None) an output; False when it was never seen."""
        self.db.statement("UPDATE rw_event_outputs SET disabled = ? WHERE output = ?", (reason, output))
        return bool(self.db.statement("SELECT 1 FROM rw_event_outputs WHERE output = ?", (output,)))

    # ---- appending
    def append(self, events: Iterable[OutgoingEvent], outputs: Sequence[OutputBase], first_seen: Mapping[str, int],
               now: int | None = None) -> int:
        """Add each event for each output that accepts it and saw its fact happen (idempotent); rows tried."""
        now = now_ms() if now is None else now
        rows = []
        for event in events:
            time_ms = int(event.time.timestamp() * 1000)
            text = _json(event)
            for out in outputs:
                if time_ms >= first_seen.get(out.name, now) and out.accepts(event.short_type, event.model, event.data):
                    rows.append((out.name, event.id, event.model, event.sequence, event.short_type, time_ms, text, now))
        if rows:
            self.db.statements("INSERT INTO rw_event_outbox (output, id, model, sequence, type, time_ms, event, "
                             "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        return len(rows)

    # ---- delivering
    def heads(self, output: str) -> list[OutboxRow]:
        """Each model's next pending event on ``output`` (lowest sequence first), in sequence order."""
        rows = self.db.statement(
            f"SELECT {_COLUMNS} FROM rw_event_outbox o WHERE output = ? AND state = 'pending' AND sequence = "
            "(SELECT MIN(sequence) FROM rw_event_outbox p WHERE p.output = o.output AND p.model = o.model "
            "AND p.state = 'pending') ORDER BY sequence", (output,))
        return [_row(r) for r in rows]

    def attempted(self, row: OutboxRow, error: str, next_attempt_ms: int, now: int | None = None) -> None:
        """A failed attempt: counted, its error kept, the next one scheduled."""
        now = now_ms() if now is None else now
        self.db.statement("UPDATE rw_event_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_ms = ?, "
                    "first_attempt_ms = COALESCE(first_attempt_ms, ?) WHERE output = ? AND id = ?",
                    (error[:2000], next_attempt_ms, now, row.output, row.event.id))

    def started(self, row: OutboxRow, now: int | None = None) -> int:
        """The first attempt's time (recorded now when none yet): the dead-letter clock starts."""
        now = now_ms() if now is None else now
        if row.first_attempt_ms is not None:
            return row.first_attempt_ms
        self.db.statement("UPDATE rw_event_outbox SET first_attempt_ms = COALESCE(first_attempt_ms, ?) "
                    "WHERE output = ? AND id = ?", (now, row.output, row.event.id))
        return now

    def settle(self, row: OutboxRow, state: str, error: str | None = None, now: int | None = None) -> None:
        """``delivered`` or ``dead`` (with the last error)."""
        now = now_ms() if now is None else now
        self.db.statement("UPDATE rw_event_outbox SET state = ?, attempts = attempts + 1, done_ms = ?, "
                    "last_error = COALESCE(?, last_error), first_attempt_ms = COALESCE(first_attempt_ms, ?) "
                    "WHERE output = ? AND id = ?", (state, now, error, now, row.output, row.event.id))

    # ---- operators
    def rows(self, output: str | None = None, state: str | None = None, limit: int = 1000) -> list[OutboxRow]:
        """Rows, newest fact first (``events list``)."""
        where, params = _where(output=output, state=state)
        rows = self.db.statement(f"SELECT {_COLUMNS} FROM rw_event_outbox{where} ORDER BY time_ms DESC, sequence DESC "
                           f"LIMIT {int(limit)}", params)
        return [_row(r) for r in rows]

    def resend(self, *, output: str | None = None, event_id: str | None = None, since_ms: int | None = None,
               model: str | None = None) -> int:
        """Put matching rows back to ``pending`` as a replay (the same id, ``replay`` + 1, attempts reset)."""
        where, params = _where(output=output, id=event_id, model=model)
        if since_ms is not None:
            where += (" AND" if where else " WHERE") + " time_ms >= ?"
            params.append(since_ms)
        count = self.db.statement(f"SELECT COUNT(*) FROM rw_event_outbox{where}", params)[0][0]
        self.db.statement("UPDATE rw_event_outbox SET state = 'pending', replay = replay + 1, attempts = 0, "
                    f"first_attempt_ms = NULL, next_attempt_ms = 0, done_ms = NULL{where}", params)
        return int(str(count))

    def pending_counts(self, now: int | None = None) -> dict[str, tuple[int, float]]:
        """Output -> (pending events, age in seconds of the oldest)."""
        now = now_ms() if now is None else now
        rows = self.db.statement("SELECT output, COUNT(*), MIN(created_ms) FROM rw_event_outbox WHERE state = 'pending' "
                           "GROUP BY output")
        return {str(o): (int(str(n)), max(0.0, (now - int(str(t))) / 1000)) for o, n, t in rows}

    def pending_models(self) -> dict[str, int]:
        """Model -> pending events over every output (the console's view)."""
        return {str(m): int(str(n)) for m, n in
                self.db.statement("SELECT model, COUNT(*) FROM rw_event_outbox WHERE state = 'pending' GROUP BY model")}


def _where(**filters: str | None) -> tuple[str, list[object]]:
    parts: list[str] = []
    params: list[object] = []
    for column, value in filters.items():
        if value is not None:
            parts.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _json(event: OutgoingEvent) -> str:
    import json

    return json.dumps(event.as_json(), separators=(",", ":"), sort_keys=True)
