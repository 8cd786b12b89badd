"""Onboarding by experiment tag: the ``discover`` block.

An experiment carrying ``tag`` is watched; the tag's value names the registered model, and
``profile_tag`` names the ``profiles`` entry (a watch block without ``experiment`` and
``model_name``) that gives it gates, tags, aliases, scoring and policies.
"""

from __future__ import annotations

from pydantic import Field

from watcher.config.base import Strict

DEFAULT_TAG = "registry-watcher.model"
DEFAULT_PROFILE_TAG = "registry-watcher.profile"
DEFAULT_PROFILE = "default"


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
