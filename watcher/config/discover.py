"""Onboarding by experiment tag: the ``discover`` block.

An experiment carrying ``tag`` is watched; the tag's value names the registered model, and
``profile_tag`` names the ``profiles`` entry (a watch block without ``experiment`` and
``model_name``) that gives it gates, tags, aliases, scoring and policies.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import Field

from watcher.config.base import Strict

DEFAULT_TAG = "registry-watcher.model"
DEFAULT_PROFILE_TAG = "registry-watcher.profile"
DEFAULT_PROFILE = "default"
Backfill = Literal["since_tagged", "all"] | datetime
"""Where a newly discovered experiment's history starts (``DiscoverConfig.backfill``)."""


class DiscoverConfig(Strict):
    """Which experiment tags make a watch, and how often experiments are searched for them."""

    tag: str = Field(DEFAULT_TAG, min_length=1)
    """Experiment tag whose presence makes the experiment watched; its value is the registered
    model's name (an empty value, or a prompt's name, is refused with a reason)."""
    profile_tag: str = Field(DEFAULT_PROFILE_TAG, min_length=1)
    """Experiment tag naming the profile the watch takes; no tag means the profile ``default``."""
    interval_seconds: float = Field(30.0, gt=0)
    """Seconds between experiment searches (one paged ``search_experiments`` each); 30 s onboards a
    model within half a minute while costing ~2 requests a minute, never one per poll."""
    backfill: Backfill = "since_tagged"
    """Which runs of a newly discovered experiment are decided: ``since_tagged`` (the default) only
    those that end after the watcher first saw the experiment tagged (recorded on the experiment,
    tag ``registry-watcher.first_seen``, so restarts and replicas agree), so tagging an experiment
    with a long history does not gate and register all of it at once; ``all`` its whole history;
    an ISO-8601 date or time (UTC when no zone is given) the runs that ended since then. Older
    runs are processed on purpose, ``backfill_batch`` at a time per tick, so the rest of the fleet
    keeps its latency. An experiment watched before (its model holds a cursor for it: an earlier
    release, or a ``watches`` entry) goes on from its cursor; ``watches`` entries always take
    their experiment's whole history, as before."""
    backfill_batch: int = Field(20, ge=1, le=1000)
    """Runs older than the first sighting decided per watch per tick while a backfill lasts; 20
    keeps a tick's extra work to about one page of gates, so the other watches wait at most that."""

    def backfill_from_ms(self, first_seen_ms: int) -> int:
        """Epoch ms of the oldest run end a new watch takes, given when it was first seen."""
        if self.backfill == "since_tagged":
            return first_seen_ms
        if self.backfill == "all":
            return 0
        when = self.backfill if self.backfill.tzinfo else self.backfill.replace(tzinfo=timezone.utc)
        return max(0, min(first_seen_ms, int(when.timestamp() * 1000)))
