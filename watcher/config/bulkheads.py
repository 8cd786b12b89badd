"""Bulkheads: how a watch that fails on its own is checked, probed and retried (the ``bulkheads`` block).

A watch whose experiment cannot be read, whose gates raise or whose registry writes fail is
*failed* on its own: held out of the fleet's ticks and probed on its own backoff, while every
other watch keeps its latency. While the tracking server is unreachable, a cheap probe of its
``/health`` ends the fleet's backoff as soon as it answers.
"""

from __future__ import annotations

from pydantic import Field

from watcher.config.base import RetryConfig, Strict


class BulkheadConfig(Strict):
    """Per-watch failure isolation and the tracking server's return."""

    readability_check_seconds: float = Field(300.0, gt=0)
    """Seconds between checks that every watched experiment can still be read by the watcher's own
    MLflow user (and is neither deleted nor renamed). MLflow's basic-auth answers a batched run
    search over a denied experiment with no runs and no error, so a denial is only seen this way;
    each check costs one paged ``search_experiments`` for the fleet (one ``get_experiment`` per
    experiment up to 25 watches), so 300 s finds a permission change within 5 minutes for a few
    requests an hour. A newly discovered or configured watch is checked at once."""
    retry: RetryConfig = RetryConfig(initial_seconds=5.0, max_seconds=300.0)
    """Backoff of one failed watch: its next probe (one ``get_experiment``, or the watch retried
    alone when it failed for its gates or writes) comes after ``retry.delay(failures)``; 5 s then
    doubling to 5 minutes keeps a broken watch cheap while a fixed one recovers within seconds."""
    server_probe_seconds: float = Field(2.0, gt=0)
    """While the tracking server is unreachable, seconds between probes of its ``/health`` (whatever
    the poll backoff); the first answer ends the backoff, so the fleet is polled again within about
    this long of the server's return. A probe is one small GET."""
