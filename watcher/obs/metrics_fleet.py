"""Prometheus metrics of Fleet II (issue 26): per-watch health and coalesced ticks.

Names and labels are a public interface (dashboards depend on them): add, never rename. A watch's
label value is its key, ``<experiment> -> <model>`` (``watcher.service.watch_states.watch_key``).
"""

from __future__ import annotations

from prometheus_client import Gauge

# ---- F1 ----
WATCHES_REFUSED = Gauge("registry_watcher_watches_refused",
                        "Tagged experiments refused for the model because another experiment feeds it (its claim, or "
                        "the config's watches); 0 when none.", ["model"])


def set_watches_refused(model: str, count: int) -> None:
    """How many tagged experiments discovery refuses for ``model`` now (ownership)."""
    WATCHES_REFUSED.labels(model=model).set(count)
