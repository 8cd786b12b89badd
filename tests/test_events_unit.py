"""Outgoing events without a server: ids, sequences, the envelope and its signature, the outbox, and
the delivery loop (retry, dead letter, 410) against a fake output."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
from events_receiver import Receiver
from standardwebhooks import Webhook

from watcher.config.events import EventsConfig, HttpOutputConfig, SlackOutputConfig, default_source
from watcher.events.db import OutputLock, SqliteDatabase
from watcher.events.delivery import Delivery
from watcher.events.facts import committed, move_event
from watcher.events.http import HttpOutput
from watcher.events.model import DeliveryResult, OutgoingEvent, event_id, sequence_of
from watcher.events.outbox import Outbox
from watcher.store.audit import AuditEntry

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _event(model: str, ms: int, n: int = 0, short: str = "alias.moved") -> OutgoingEvent:
    return OutgoingEvent(event_id(short, f"k{model}{ms}{n}"), f"io.registry-watcher.{short}", "registry-watcher/t",
                         model, datetime.fromtimestamp(ms / 1000, timezone.utc), sequence_of(ms, n), model, {"n": n})


def _entry(id_: str, version: str, status: str = "done", start: int = 1000) -> AuditEntry:
    return AuditEntry(id=id_, model="m", alias="staging", version=version, previous="1", at="", by="watcher",
                      action="stage", reason="run r passed", forced=False, status=status, start_ms=start)


def test_ids_are_stable_and_sequences_sort_as_facts():
    assert event_id("alias.moved", "audit:x") == event_id("alias.moved", "audit:x")
    assert event_id("alias.moved", "audit:x") != event_id("run.decided", "audit:x")
    assert sequence_of(999, 10) < sequence_of(1000, 2) < sequence_of(1000, 10)
    assert default_source("http://user:pw@mlflow.example:5000/") == "registry-watcher/mlflow.example:5000"


def test_binary_mode_headers_and_a_signature_that_verifies():
    event = move_event("registry-watcher/t", _entry("e1", "3"))
    output = HttpOutput(HttpOutputConfig(name="cd", url="http://127.0.0.1:9/x", secret=SECRET))
    headers, body = output.headers(event)
    assert headers["ce-specversion"] == "1.0" and headers["ce-id"] == headers["webhook-id"] == event.id
    assert headers["ce-subject"] == "m" and headers["ce-type"] == "io.registry-watcher.alias.moved"
    assert headers["content-type"] == "application/json" and headers["ce-sequence"] == event.sequence
    data = Webhook(SECRET).verify(body, headers)
    assert data["model_uri"] == "models:/m/3" and data["previous_version"] == "1" and data["moved_by"] == "watcher"
    assert OutgoingEvent.from_json(json.loads(json.dumps(event.as_json()))) == event


def test_an_open_intent_counts_when_its_alias_points_at_it():
    done, open_, stale = _entry("a", "2"), _entry("b", "3", "pending", 2000), _entry("c", "4", "abandoned", 3000)
    assert [e.id for e in committed([done, open_, stale], {"m": {"staging": "3"}})] == ["a", "b"]
    assert [e.id for e in committed([done, open_], {"m": {"staging": "2"}})] == ["a"]


def test_slack_sends_moves_and_rejections_unless_asked():
    slack = SlackOutputConfig(name="chat", url="https://hooks.slack.example/x")
    assert slack.accepts("alias.moved", "m", {}) and slack.accepts("run.decided", "m", {"decision": "rejected"})
    assert not slack.accepts("run.decided", "m", {"decision": "registered"})
    asked = SlackOutputConfig(name="chat", url="https://x.example/", types=["run.decided"])
    assert asked.accepts("run.decided", "m", {"decision": "registered"}) and not asked.accepts("alias.moved", "m", {})
    with pytest.raises(ValueError, match="duplicate"):
        EventsConfig(outputs=[{"name": "a", "type": "http", "url": "http://x"}] * 2)


def test_outbox_appends_once_from_first_sight_and_gives_each_models_head(tmp_path):
    outbox = Outbox(SqliteDatabase(str(tmp_path / "o.sqlite")))
    out = HttpOutputConfig(name="cd", url="http://x")
    seen = outbox.first_seen(["cd"], now=1000)
    assert outbox.first_seen(["cd"], now=5000) == {"cd": 1000}  # a known output keeps its first sight
    events = [_event("a", 999), _event("a", 2000, 2), _event("a", 2000, 1), _event("b", 3000)]
    assert outbox.append(events, [out], seen) == 3  # the fact before the output was seen is not owed
    outbox.append(events, [out], seen)  # idempotent
    assert len(outbox.rows()) == 3
    heads = outbox.heads("cd")
    assert [(h.event.model, h.event.data["n"]) for h in heads] == [("a", 1), ("b", 0)]


class FakeOutput:
    def __init__(self, answers: list[DeliveryResult]) -> None:
        self.name = "fake"
        self.answers = answers
        self.sent: list[tuple[str, int]] = []

    def send(self, event: OutgoingEvent) -> DeliveryResult:
        self.sent.append((event.id, event.replay))
        return self.answers.pop(0) if self.answers else DeliveryResult("delivered")

    def check(self) -> str | None:
        return None

    def close(self) -> None:
        pass


def _delivery(tmp_path, answers, **cfg):
    outbox = Outbox(SqliteDatabase(str(tmp_path / "o.sqlite")))
    config = HttpOutputConfig(name="fake", url="http://x", retry_initial_seconds=0.001, retry_max_seconds=0.001,
                              **cfg)
    fake = FakeOutput(answers)
    seen = outbox.first_seen(["fake"], now=0)
    return outbox, Delivery(outbox, config, fake, OutputLock(None, "fake"), threading.Event()), fake, config, seen


def _drain(delivery: Delivery, steps: int = 50) -> None:
    for _ in range(steps):
        delivery.step()


def test_retries_keep_the_id_and_order_per_model(tmp_path):
    outbox, delivery, fake, config, seen = _delivery(tmp_path, [DeliveryResult("retry", "HTTP 503")] * 3)
    events = [_event("a", 1000), _event("a", 2000), _event("b", 1500)]
    outbox.append(events, [config], seen)
    _drain(delivery)
    assert len(fake.sent) == 6 and {i for i, _ in fake.sent} == {e.id for e in events}  # 3 x 503: the same ids
    delivered = [i for i, _ in fake.sent]
    assert delivered.index(events[0].id) < delivered.index(events[1].id)
    assert {r.state for r in outbox.rows()} == {"delivered"}
    assert outbox.resend(output="fake", since_ms=1500) == 2
    _drain(delivery)
    assert fake.sent[-2:] in ([(events[2].id, 1), (events[1].id, 1)], [(events[1].id, 1), (events[2].id, 1)])


def test_dead_letter_after_max_age_then_the_next_event_goes(tmp_path):
    outbox, delivery, fake, config, seen = _delivery(tmp_path, [DeliveryResult("retry", "HTTP 500")] * 1000,
                                                     max_age_seconds=0.05)
    first, second = _event("a", 1000), _event("a", 2000)
    outbox.append([first, second], [config], seen)
    deadline = time.monotonic() + 10
    while not outbox.rows(state="dead") and time.monotonic() < deadline:
        delivery.step()
    assert [r.event.id for r in outbox.rows(state="dead")] == [first.id]
    assert outbox.rows(state="dead")[0].last_error == "HTTP 500"


def test_410_disables_until_enabled(tmp_path):
    outbox, delivery, fake, config, seen = _delivery(tmp_path, [DeliveryResult("disabled", "HTTP 410")])
    event = _event("a", 1000)
    outbox.append([event], [config], seen)
    _drain(delivery, 3)
    assert outbox.disabled("fake") == "HTTP 410" and len(fake.sent) == 1
    _drain(delivery, 3)
    assert len(fake.sent) == 1  # disabled: nothing is sent
    outbox.set_disabled("fake", None)
    _drain(delivery, 3)
    assert outbox.rows(state="delivered")[0].event.id == event.id and len(fake.sent) == 2


def test_http_output_outcomes():
    receiver = Receiver(status=503)
    try:
        output = HttpOutput(HttpOutputConfig(name="cd", url=receiver.url, secret=SECRET, timeout_seconds=5))
        event = _event("m", 1000)
        assert output.send(event).outcome == "retry"
        receiver.status = 410
        assert output.send(event).outcome == "disabled"
        receiver.status = 204
        assert output.send(event).outcome == "delivered"
        assert output.check() is None
        assert {r.headers["webhook-id"] for r in receiver.requests} == {event.id}
    finally:
        receiver.close()
    assert HttpOutput(HttpOutputConfig(name="x", url="http://127.0.0.1:9/")).check() is not None
