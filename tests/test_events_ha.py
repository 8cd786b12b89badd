"""Outgoing events under ``ha`` (the machine's PostgreSQL): the outbox in the lock database, one
replica at a time per output (its advisory lock), and a new output that starts from its first sight.

Each test uses outputs of its own (unique names), so the shared tables hold other tests' rows
without mixing."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from watcher.config.events import HttpOutputConfig
from watcher.events.db import OutputLock, PostgresDatabase
from watcher.events.delivery import Delivery
from watcher.events.model import DeliveryResult, OutgoingEvent, event_id, sequence_of
from watcher.events.outbox import Outbox

pytestmark = pytest.mark.integration


def _event(model: str, ms: int) -> OutgoingEvent:
    return OutgoingEvent(event_id("alias.moved", f"ha:{model}:{ms}"), "io.registry-watcher.alias.moved",
                         "registry-watcher/t", model, datetime.fromtimestamp(ms / 1000, timezone.utc),
                         sequence_of(ms), model, {"ms": ms})


class Recorder:
    """An output that delivers everything and remembers what it sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    def send(self, event: OutgoingEvent) -> DeliveryResult:
        self.sent.append(event.id)
        return DeliveryResult("delivered")

    def check(self) -> str | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def outbox(lock_url: str):
    box = Outbox(PostgresDatabase(lock_url))
    yield box
    box.db.close()


def test_the_postgresql_outbox_appends_once_delivers_in_order_and_replays(outbox: Outbox):
    name = f"cd-{uuid.uuid4().hex[:8]}"
    model = f"m-{name}"
    out = HttpOutputConfig(name=name, url="http://x")
    seen = outbox.first_seen([name], now=1000)
    events = [_event(model, 3000), _event(model, 2000), _event(model, 500)]
    assert outbox.append(events, [out], seen) == 2  # the fact before the output's first sight is not owed
    assert outbox.append(events, [out], seen) == 2 and len(outbox.rows(output=name)) == 2  # idempotent by id
    assert [h.event.data["ms"] for h in outbox.heads(name)] == [2000]  # one model: its oldest fact first
    recorder = Recorder(name)
    delivery = Delivery(outbox, out, recorder, OutputLock(None, name), threading.Event())
    for _ in range(5):
        delivery.step()
    assert recorder.sent == [events[1].id, events[0].id]
    assert {r.state for r in outbox.rows(output=name)} == {"delivered"}
    assert outbox.resend(output=name, event_id=events[0].id) == 1
    delivery.step()
    assert recorder.sent[-1] == events[0].id and outbox.rows(output=name, state="pending") == []


def test_each_output_is_delivered_by_one_replica_at_a_time(outbox: Outbox, lock_url: str):
    name = f"bus-{uuid.uuid4().hex[:8]}"
    out = HttpOutputConfig(name=name, url="http://x")
    lock_a, lock_b, other = OutputLock(lock_url, name), OutputLock(lock_url, name), OutputLock(lock_url, f"o-{name}")
    try:
        assert lock_a.held() and not lock_b.held()  # the first to ask holds it; the other replica waits
        assert lock_a.held() and other.held()  # kept while its session lives; another output's is another lock
        lock_a.release()  # the holder dies (its session goes): the other replica takes over
        assert lock_b.held() and not lock_a.held()
    finally:
        for lock in (lock_a, lock_b, other):
            lock.release()
    events = [_event(f"m-{name}", ms) for ms in (2000, 3000, 4000)]
    outbox.append(events, [out], outbox.first_seen([name], now=1000))
    stop = threading.Event()
    replicas = []
    for _ in range(2):  # two replicas' delivery threads: each its own outbox connection and lock session
        box, recorder = Outbox(PostgresDatabase(lock_url)), Recorder(name)
        replicas.append((box, recorder, Delivery(box, out, recorder, OutputLock(lock_url, name), stop).start()))
    try:
        deadline = time.monotonic() + 30
        while outbox.rows(output=name, state="pending") and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the condition, bounded
        assert outbox.rows(output=name, state="pending") == []
    finally:
        stop.set()
        for box, _, delivery in replicas:
            delivery.join(5)
            box.db.close()
    sent = sorted((r.sent for _, r, _ in replicas), key=len)
    assert sent == [[], [e.id for e in events]]  # one replica sent them all, in order; the other none


def test_a_new_output_starts_from_its_first_sight_and_keeps_it(outbox: Outbox, lock_url: str):
    old, new = f"old-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    model = f"m-{old}"
    outputs = [HttpOutputConfig(name=old, url="http://x")]
    seen = outbox.first_seen([old], now=1000)
    outbox.append([_event(model, 2000)], outputs, seen)
    outputs.append(HttpOutputConfig(name=new, url="http://y"))  # added to the config later
    seen = Outbox(PostgresDatabase(lock_url)).first_seen([old, new], now=5000)  # a restarted daemon sees it
    assert seen == {old: 1000, new: 5000}
    history = [_event(model, 2000), _event(model, 4000), _event(model, 6000)]  # re-derived at start-up
    outbox.append(history, outputs, seen)
    assert sorted(r.event.data["ms"] for r in outbox.rows(output=old)) == [2000, 4000, 6000]
    assert [r.event.data["ms"] for r in outbox.rows(output=new)] == [6000]  # not the history before it
    assert outbox.first_seen([old, new], now=9000) == seen  # a later restart keeps the first sight
