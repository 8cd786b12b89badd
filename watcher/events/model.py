"""The outgoing event, the outcome of one delivery attempt, and the interface every output implements.

* :class:`OutgoingEvent` (frozen): one fact as a CloudEvent. Its ``id`` is a UUID5 of the fact's key
  (:func:`event_id`), so the same decision or move has the same id across restarts, replicas and
  replays; ``sequence`` (a zero-padded string from the fact) orders one model's events.
  :meth:`OutgoingEvent.to_cloudevent` builds the ``cloudevents.core`` (2.x) envelope;
  :meth:`OutgoingEvent.binary` gives the CloudEvents HTTP binary-mode headers (``ce-*``,
  ``content-type``) and body, which the HTTP output posts and the NATS output uses as message headers.
* :class:`DeliveryResult`: what an output says of one attempt (``delivered``, ``retry``,
  ``disabled`` for a 410, ``dead`` for an event that can never be delivered).
* :class:`Output` (a Protocol): ``name``, ``send(event)``, ``check()`` (reach test for
  ``check-config``: None when reachable, else the error; no event sent) and ``close()``.
* ``make_output`` (in :mod:`watcher.events.outputs`): the output for one output config. The HTTP output is
  :class:`watcher.events.http.HttpOutput`; ``nats`` and ``slack`` are imported lazily from
  ``watcher.events.outputs.nats`` (``NatsOutput(config)``) and ``watcher.events.outputs.slack``
  (``SlackOutput(config, ui_url)``), so their libraries load only when configured.

A replay (``events replay``) sends the same event with ``replay`` = n >= 1 (the n-th replay of that
event on that output); the NATS output publishes it with ``Nats-Msg-Id`` ``<id>.replay.<n>`` so the
stream stores it again, and ``ce-id`` stays the event id. ``replay`` is 0 otherwise.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from watcher.config.events import EVENT_TYPE_PREFIX

NAMESPACE = uuid.UUID("6f1d3c2e-9a4b-5e8f-b1c7-2d0e4a6b8c90")
"""The UUID5 namespace of event ids (fixed forever: ids must not change between releases)."""
SEQUENCE_DIGITS = 15
"""Width of each number in ``sequence`` (epoch ms has 13 digits; versions and end times fit)."""
CONTENT_TYPE = "application/json"
Outcome = Literal["delivered", "retry", "disabled", "dead"]


def event_id(short_type: str, key: str) -> str:
    """The stable id of the event of one fact: UUID5 of ``<short type>:<fact key>``."""
    return str(uuid.uuid5(NAMESPACE, f"{short_type}:{key}"))


def sequence_of(time_ms: int, then: int = 0) -> str:
    """``sequence``: the fact's time in ms, then a tie-breaker (version or run end time), zero-padded,
    so that string order is fact order."""
    return f"{max(0, time_ms):0{SEQUENCE_DIGITS}d}-{max(0, then):0{SEQUENCE_DIGITS}d}"


@dataclass(frozen=True)
class OutgoingEvent:
    """One fact as a CloudEvent (tick data: frozen)."""

    id: str
    """Stable: :func:`event_id` of the fact's key."""
    type: str
    """Full CloudEvents type, ``io.registry-watcher.alias.moved``."""
    source: str
    """CloudEvents ``source`` (config ``events.source`` or derived from the tracking server)."""
    subject: str
    """Names the model (``M``), and the run where one applies (``M/runs/<run id>``)."""
    time: datetime
    """When the fact happened (timezone-aware UTC)."""
    sequence: str
    """Orders one model's events (:func:`sequence_of`); may have gaps."""
    model: str
    """The registered model's real name (filters, per-model order, NATS subject)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The JSON data (versions are strings)."""
    replay: int = 0
    """0, or n for the n-th replay of this event on the output it is sent to."""

    @property
    def short_type(self) -> str:
        """The type without its prefix: ``alias.moved``, ``run.decided``, ..."""
        return self.type.removeprefix(EVENT_TYPE_PREFIX)

    def to_cloudevent(self) -> CloudEvent:
        """The CloudEvents 1.0 envelope (``cloudevents.core``), ``sequence`` as an extension."""
        when = self.time if self.time.tzinfo is not None else self.time.replace(tzinfo=timezone.utc)
        return CloudEvent(attributes={
            "specversion": "1.0", "id": self.id, "source": self.source, "type": self.type, "subject": self.subject,
            "time": when.astimezone(timezone.utc), "datacontenttype": CONTENT_TYPE, "sequence": self.sequence,
        }, data=dict(self.data))

    def binary(self) -> tuple[dict[str, str], bytes]:
        """CloudEvents HTTP binary mode: (headers: ``ce-*`` and ``content-type``, body: the JSON data)."""
        message = to_binary_event(self.to_cloudevent())
        return dict(message.headers), bytes(message.body)

    def body(self) -> bytes:
        """The data as compact JSON bytes (the same as :meth:`binary`'s body)."""
        return self.binary()[1]

    def as_json(self) -> dict[str, Any]:
        """The event as stored in the outbox and shown by ``events list --json`` (without ``replay``)."""
        return {"id": self.id, "type": self.type, "source": self.source, "subject": self.subject,
                "time": self.time.astimezone(timezone.utc).isoformat(timespec="milliseconds"),
                "sequence": self.sequence, "model": self.model, "data": dict(self.data)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | str) -> OutgoingEvent:
        """The inverse of :meth:`as_json` (a dict or its JSON text)."""
        raw = json.loads(value) if isinstance(value, str) else dict(value)
        return cls(id=raw["id"], type=raw["type"], source=raw["source"], subject=raw["subject"],
                   time=datetime.fromisoformat(raw["time"]), sequence=raw["sequence"], model=raw["model"],
                   data=raw.get("data") or {})


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt came to: ``delivered``; ``retry`` (with the error); ``disabled`` (410: the output
    stops until ``events enable``); ``dead`` (never deliverable: dead-lettered at once)."""

    outcome: Outcome
    error: str | None = None


DELIVERED = DeliveryResult("delivered")


class Output(Protocol):
    """An output (one entry of ``events.outputs``), used by one delivery thread at a time."""

    name: str

    def send(self, event: OutgoingEvent) -> DeliveryResult:
        """One attempt to deliver ``event`` (within the output's ``timeout_seconds``); never raises."""
        ...

    def check(self) -> str | None:
        """Reach the receiver without sending an event: None when reachable, else the error."""
        ...

    def close(self) -> None:
        """Release connections (the delivery thread is stopping)."""
        ...
