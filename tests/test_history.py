"""History encoding stays within MLflow's registered-model tag limit."""

from watcher import history, state


def test_history_trims_oldest_entries_to_fit():
    entries = [{"seq": i, "version": str(i), "previous": str(i - 1), "at": "2026-01-01T00:00:00Z",
                "by": "alice", "action": "promote", "reason": "x" * 80} for i in range(1, 200)]
    text = history.encode(entries)
    kept = state.load(text)["entries"]
    assert len(text) <= state.MODEL_TAG_LIMIT and kept[-1]["seq"] == 199 and kept[0]["seq"] > 1
    assert state.load(text)["version"] == state.STATE_VERSION


def test_previous_version_skips_current_and_removals():
    entries = [{"seq": 1, "version": "1"}, {"seq": 2, "version": "2"}, {"seq": 3, "version": None},
               {"seq": 4, "version": "2"}]
    assert history.previous_version(entries, "2") == "1"
    assert history.previous_version([], "2") is None
