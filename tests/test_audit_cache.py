"""The audit cache's watermark (``watcher.engine.snapshot.AuditCache``), as pure unit tests.

What it guarantees: the first read takes the whole trail, each later one only what started since
the newest entry seen minus ``AUDIT_OVERLAP_MS`` (so a writer whose clock lags, or an intent
finished since, is read again); the watermark never runs ahead of this process's clock (a writer
whose clock runs ahead cannot push the window past entries still to come) and never moves back;
a change of audit experiment starts over; the trail is read once per tick, at its first alias
step; a dirty alias is read directly once. No server: the reads are replaced by fakes.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from watcher.engine import snapshot
from watcher.engine.snapshot import AUDIT_OVERLAP_MS, RECENT, AuditCache
from watcher.store.audit import AuditEntry, AuditTrail

NOW_MS = 1_800_000_000_000
CLIENT: Any = object()  # never used: every read is faked


def _entry(entry_id: str, start_ms: int, version: str = "1", status: str = "done", alias: str = "production",
           model: str = "m") -> AuditEntry:
    return AuditEntry(id=entry_id, model=model, alias=alias, version=version, previous=None, at="", by="alice",
                      action="promote", reason="", forced=False, status=status, start_ms=start_ms)


class FakeTrail:
    """The audit trail as ``batch_reads.audit_since`` and ``audit.recent`` see it."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.since_asked: list[int | None] = []
        self.recent_asked: list[tuple[str, str]] = []

    def audit_since(self, _client: Any, experiment: AuditTrail | str, since_ms: int | None) -> list[AuditEntry]:
        assert isinstance(experiment, AuditTrail)  # resolved once, passed along
        self.since_asked.append(since_ms)
        found = [e for e in self.entries if since_ms is None or e.start_ms >= since_ms]
        return sorted(found, key=lambda e: e.start_ms, reverse=True)

    def recent(self, _client: Any, _experiment: AuditTrail | str, model: str, alias: str,
               n: int = 10) -> list[AuditEntry]:
        self.recent_asked.append((model, alias))
        mine = sorted((e for e in self.entries if (e.model, e.alias) == (model, alias)), key=lambda e: e.start_ms)
        return mine[-n:]


@pytest.fixture
def trail(monkeypatch: pytest.MonkeyPatch) -> FakeTrail:
    fake = FakeTrail()
    monkeypatch.setattr(snapshot.batch_reads, "audit_since", fake.audit_since)
    monkeypatch.setattr(snapshot.audit, "recent", fake.recent)
    return fake


def _cache(now_ms: list[int]) -> AuditCache:
    return AuditCache(clock=lambda: now_ms[0] / 1000)


def test_the_first_read_takes_everything_then_only_what_started_since_the_watermark_minus_the_overlap(
        trail: FakeTrail) -> None:
    now = [NOW_MS]
    cache = _cache(now)
    trail.entries = [_entry("a", NOW_MS - 60_000), _entry("b", NOW_MS - 10_000, version="2")]
    cache.refresh(CLIENT, "audit")
    assert trail.since_asked == [None]
    assert cache.watermark == NOW_MS - 10_000
    assert [e.id for e in cache.recent(CLIENT, "m", "production")] == ["a", "b"]
    cache.refresh(CLIENT, "audit")
    assert trail.since_asked[-1] == NOW_MS - 10_000 - AUDIT_OVERLAP_MS


def test_an_entry_from_a_lagging_writer_inside_the_overlap_is_still_seen(trail: FakeTrail) -> None:
    now = [NOW_MS]
    cache = _cache(now)
    trail.entries = [_entry("a", NOW_MS - 1_000)]
    cache.refresh(CLIENT, "audit")
    # the CLI on a laptop whose clock lags by two minutes writes its move after the refresh
    trail.entries.append(_entry("late", NOW_MS - 121_000, version="2"))
    now[0] += 5_000
    cache.refresh(CLIENT, "audit")
    assert "late" in {e.id for e in cache.recent(CLIENT, "m", "production")}
    assert cache.watermark == NOW_MS - 1_000  # it did not move back to the late entry's start


def test_the_watermark_never_runs_ahead_of_this_clock(trail: FakeTrail) -> None:
    now = [NOW_MS]
    cache = _cache(now)
    # a writer whose clock runs an hour ahead
    trail.entries = [_entry("ahead", NOW_MS + 3_600_000)]
    cache.refresh(CLIENT, "audit")
    assert cache.watermark == NOW_MS
    # an entry written now by a writer with a correct clock is inside the next window
    trail.entries.append(_entry("now", NOW_MS + 1_000, version="2"))
    now[0] += 2_000
    cache.refresh(CLIENT, "audit")
    assert trail.since_asked[-1] == NOW_MS - AUDIT_OVERLAP_MS
    assert {e.id for e in cache.recent(CLIENT, "m", "production")} == {"ahead", "now"}
    assert cache.watermark == NOW_MS + 2_000  # still capped by the clock, which moved on


def test_the_watermark_never_moves_back_when_nothing_is_new(trail: FakeTrail) -> None:
    now = [NOW_MS]
    cache = _cache(now)
    trail.entries = [_entry("a", NOW_MS - 1_000)]
    cache.refresh(CLIENT, "audit")
    trail.entries = []  # nothing new in the window
    cache.refresh(CLIENT, "audit")
    assert cache.watermark == NOW_MS - 1_000


def test_a_change_of_audit_experiment_starts_over(trail: FakeTrail) -> None:
    cache = _cache([NOW_MS])
    trail.entries = [_entry("a", NOW_MS - 1_000)]
    cache.refresh(CLIENT, "audit")
    trail.entries = []
    cache.refresh(CLIENT, "another-audit")
    assert trail.since_asked == [None, None]
    assert cache.recent(CLIENT, "m", "production") == []


def test_the_trail_is_read_once_per_tick_at_the_first_alias_step(trail: FakeTrail) -> None:
    cache = _cache([NOW_MS])
    trail.entries = [_entry("a", NOW_MS - 1_000), _entry("s", NOW_MS - 500, alias="staging")]
    cache.expire("audit")
    assert trail.since_asked == []  # nothing read before the first alias step
    assert [e.id for e in cache.recent(CLIENT, "m", "production")] == ["a"]
    assert [e.id for e in cache.recent(CLIENT, "m", "staging")] == ["s"]
    assert trail.since_asked == [None]


def test_a_dirty_alias_is_read_directly_once(trail: FakeTrail) -> None:
    cache = _cache([NOW_MS])
    trail.entries = [_entry("a", NOW_MS - 1_000)]
    cache.refresh(CLIENT, "audit")
    cache.touch("m", "production")
    trail.entries.append(_entry("b", NOW_MS - 900_000, version="2"))  # outside any window: only a direct read sees it
    assert [e.id for e in cache.recent(CLIENT, "m", "production")] == ["b", "a"]
    assert cache.recent(CLIENT, "m", "production")
    assert trail.recent_asked == [("m", "production")]


def test_only_the_newest_entries_of_an_alias_are_kept(trail: FakeTrail) -> None:
    cache = _cache([NOW_MS])
    trail.entries = [_entry(f"e{i:02}", NOW_MS - 100_000 + i, version=str(i)) for i in range(3 * RECENT)]
    cache.refresh(CLIENT, "audit")
    kept = cache.recent(CLIENT, "m", "production")
    assert [e.id for e in kept] == [f"e{i:02}" for i in range(2 * RECENT, 3 * RECENT)]
    assert len(cache.entries[("m", "production")]) <= 2 * RECENT


class _Server:
    """A client of one tracking server: the audit experiment has its own id on each."""

    def __init__(self, uri: str, experiment_id: str) -> None:
        self.tracking_uri, self.experiment_id, self.asked = uri, experiment_id, 0

    def get_experiment_by_name(self, name: str) -> Any:
        self.asked += 1
        return SimpleNamespace(name=name, experiment_id=self.experiment_id, lifecycle_stage="active")


def test_the_trail_resolves_its_id_per_tracking_server() -> None:
    """After a reload to another ``tracking_uri`` the same trail (``AuditCache.trail``) gives the new
    server's id, not the old one's; each server is asked once (the experiment cache, keyed by URI)."""
    unique = uuid.uuid4().hex
    old, new = _Server(f"http://old-{unique}", "11"), _Server(f"http://new-{unique}", "22")
    trail = AuditTrail("registry-watcher-audit")
    assert trail.find(old) == "11" and trail.find(old) == "11"
    assert trail.find(new) == "22" and trail.ensure(new) == "22"
    assert trail.find(old) == "11"
    assert (old.asked, new.asked) == (1, 1)
