"""Committed facts, told to a listener the moment they are committed (issue 28: outgoing events).

The engine hands each fact it commits to the session's :data:`FactSink` (``Session.facts``, passed
on as ``WatchContext.facts``): the staging move's audit entry right after the alias request
returned (the move is committed: its alias points at its version), and each run's decision right
after its tags were written. The fact is frozen data (:class:`~watcher.store.audit.AuditEntry`,
:class:`~watcher.store.event_facts.Decision`); the listener (``watcher.events.service``, a layer
above) only queues it, so the tick never waits for an outbox or a receiver. Without a listener
:func:`no_facts` drops them. Telling is best effort: the facts stay in MLflow, and the events
service re-reads them after every tick (appending is idempotent by the event id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mlflow.entities import Run

from watcher.store.audit import AuditEntry
from watcher.store.event_facts import Decision, recorded_decision

Fact = AuditEntry | Decision
FactSink = Callable[[Fact], None]
"""Called with each committed fact, on the thread that committed it; must return at once and never raise."""


def no_facts(fact: Fact) -> None:
    """Drop the fact (no listener)."""


def decided(sink: FactSink, run: Run, written: Mapping[str, str] | None) -> None:
    """Tell ``sink`` of a run's decision, given the tags just written (None: nothing was written)."""
    if written is not None and sink is not no_facts:
        sink(recorded_decision(run, written))
