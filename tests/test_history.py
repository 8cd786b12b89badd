"""History helpers: the legacy tag reader and the rollback target."""

from watcher import history, state


def test_legacy_tag_is_read_oldest_first():
    entries = [{"seq": i, "version": str(i)} for i in (1, 2, 3)]
    assert history.read({state.HISTORY: state.dump({"entries": entries})}) == entries
    assert history.read({}) == [] and history.read({state.HISTORY: "not json"}) == []


def test_previous_version_skips_current_and_removals():
    entries = [{"seq": 1, "version": "1"}, {"seq": 2, "version": "2"}, {"seq": 3, "version": None},
               {"seq": 4, "version": "2"}]
    assert history.previous_version(entries, "2") == "1"
    assert history.previous_version([], "2") is None
