"""History helpers: the legacy tag reader and the rollback target."""

from watcher.engine.history import previous_version
from watcher.store import codec
from watcher.store import keys as state
from watcher.store.audit import AuditEntry
from watcher.store.migration import legacy_entries


def _entry(seq: int, version: str | None) -> AuditEntry:
    return AuditEntry(id=f"run{seq}", model="m", alias="production", version=version, previous=None,
                      at="2026-01-01T00:00:00Z", by="alice", action="promote", reason="", forced=False,
                      status="done", start_ms=seq, seq=seq)


def test_legacy_tag_is_read_oldest_first():
    entries = [{"seq": i, "version": str(i)} for i in (1, 2, 3)]
    assert legacy_entries({state.HISTORY: codec.dump({"entries": entries})}) == entries
    assert legacy_entries({}) == [] and legacy_entries({state.HISTORY: "not json"}) == []


def test_previous_version_skips_current_and_removals():
    entries = [_entry(1, "1"), _entry(2, "2"), _entry(3, None), _entry(4, "2")]
    assert previous_version(entries, "2") == "1"
    assert previous_version([], "2") is None
