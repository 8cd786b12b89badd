"""The watches the watcher would make and refuse, as ``check-config`` and ``status`` print them.

One search of the tagged experiments (``discover``) and the ownership checks, the same the daemon
makes before its first tick; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from watcher.config import WatchConfig, WatcherConfig

T = TypeVar("T")
R = TypeVar("R")

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from watcher.engine.ownership import Refusal


@dataclass(frozen=True)
class PlannedWatch:
    """A watch the watcher would make."""

    experiment: str
    experiment_id: str | None
    model: str
    source: str
    """``config``, or ``discovered (experiment tag, profile P)``."""
    watch: WatchConfig


@dataclass(frozen=True)
class Plan:
    """What the watcher would do with the config now."""

    watched: list[PlannedWatch] = field(default_factory=list)
    refused: tuple[Refusal, ...] = ()
    """Tagged experiments it would not watch (another experiment owns the model, or the tag or its
    profile cannot make a watch), each with its reason."""


def plan(client: MlflowClient, config: WatcherConfig, workers: int = 8) -> Plan:
    """The watches and refusals of ``config`` against the server now: what
    ``watcher.engine.discovery.plan_watches`` decides (one experiment search and one model search),
    with each watch's source and experiment id (configured ones looked up ``workers`` at a time)."""
    from watcher.engine.discovery import Discovery
    from watcher.store import experiments

    discovery = Discovery()
    discovery.refresh(client, config)
    watches = discovery.watches(config)
    ids: dict[str, str | None] = dict(discovery.experiment_ids())
    missing = [w.experiment for w in watches if w.experiment not in ids]
    ids.update(zip(missing, parallel(lambda name: experiments.find(client, name, deleted="id"), missing, workers)))
    watched = [PlannedWatch(w.experiment, ids.get(w.experiment), w.model_name, discovery.source_of(w.experiment), w)
               for w in watches]
    return Plan(watched, discovery.refused_watches)


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 8) -> list[R]:
    """``[fn(x) for x in items]``, ``workers`` at a time (each call is one request to the server:
    a fleet's reads take a fraction of the time one after the other would). The first error is raised."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="cli-read") as pool:
        return list(pool.map(fn, items))
