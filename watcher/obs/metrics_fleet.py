"""Prometheus metrics of Fleet II (issue 26): per-watch health and coalesced ticks.

Names and labels are a public interface (dashboards depend on them): add, never rename. A watch's
label value is its key, ``<experiment> -> <model>`` (``watcher.service.watch_states.watch_key``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# ---- F2 ----
WATCH_UP = Gauge("registry_watcher_watch_up",
                 "1 while the watch is polled normally, 0 while it is failed on its own (its experiment cannot "
                 "be read, its gates raise or its registry writes fail) and retried on its own backoff.", ["watch"])
TICKS_SKIPPED = Counter("registry_watcher_ticks_skipped",
                        "Ticks that came due while the previous one was still running, coalesced into it "
                        "(never run twice at a time).")


def set_watch_up(watch: str, up: bool) -> None:
    """The watch's state now (created at 1 when a watch first appears)."""
    WATCH_UP.labels(watch=watch).set(1 if up else 0)


def forget_watch(watch: str) -> None:
    """A watch left the effective set (its series goes with it)."""
    try:
        WATCH_UP.remove(watch)
    except KeyError:
        pass


def count_skipped_tick() -> None:
    """A tick came due while the previous one was still running."""
    TICKS_SKIPPED.inc()
# ---- F1 ----
WATCHES_REFUSED = Gauge("registry_watcher_watches_refused",
                        "Tagged experiments refused for the model because another experiment feeds it (its claim, or "
                        "the config's watches); 0 when none.", ["model"])


def set_watches_refused(model: str, count: int) -> None:
    """How many tagged experiments discovery refuses for ``model`` now (ownership)."""
    WATCHES_REFUSED.labels(model=model).set(count)
