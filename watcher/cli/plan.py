"""The watches the watcher would make and refuse, as ``check-config`` and ``status`` print them.

One search of the tagged experiments (``discover``) and the ownership checks, the same the daemon
makes before its first tick; nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from watcher.config import WatchConfig, WatcherConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import RegisteredModel

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
class FleetPlan:
    """What the watcher would do with the config now."""

    watched: list[PlannedWatch] = field(default_factory=list)
    refused: tuple[Refusal, ...] = ()
    """Tagged experiments it would not watch (another experiment owns the model, or the tag or its
    profile cannot make a watch), each with its reason."""
    models: Mapping[str, RegisteredModel] = field(default_factory=dict)
    """The watched (and tagged) registered models that exist, by name, as read in one batch."""


class OneCommandReads:
    """A client for one read-only command: a search asked again with the same arguments (the
    discovery's own tagged-experiment search and model read, after :func:`plan`'s) is answered from
    the first answer; every other call goes to the client. Never kept beyond the command."""

    MEMO = ("search_experiments", "search_registered_models")

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self._answers: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name not in self.MEMO:
            return found

        def once(*args: Any, **kwargs: Any) -> Any:
            key = repr((name, args, sorted(kwargs.items())))
            if key not in self._answers:
                self._answers[key] = found(*args, **kwargs)
            return self._answers[key]

        return once


def plan(client: MlflowClient, config: WatcherConfig, workers: int = 8) -> FleetPlan:
    """The watches and refusals of ``config`` against the server now: the daemon's discovery (the
    decision ``watcher.engine.discovery.plan_watches`` makes), with each watch's source and experiment
    id, and the watched models read in one batch (``status`` shows their aliases and tags).

    The models are read before the discovery, so its prompt check (a model the batched read returns
    is never a prompt) costs no request per model; configured experiments' ids are looked up
    ``workers`` at a time."""
    from watcher.engine.discovery import Discovery
    from watcher.store import batch_reads, experiments
    from watcher.store.decision_reads import each

    client = cast("MlflowClient", OneCommandReads(client))
    names = {w.model_name for w in config.watches}
    if config.discover is not None:
        tag = config.discover.tag
        names |= {str((e.tags or {}).get(tag, "")).strip() for e in batch_reads.tagged_experiments(client, tag)}
    models = batch_reads.models_by_name(client, names - {""})
    discovery = Discovery(not_prompts=set(models))
    discovery.refresh(client, config)
    watches = discovery.watches(config)
    ids: dict[str, str | None] = dict(discovery.experiment_ids())
    missing = [w.experiment for w in watches if w.experiment not in ids]
    ids.update(zip(missing, each(lambda name: experiments.find(client, name, deleted="id"), missing, workers), strict=True))
    watched = [PlannedWatch(w.experiment, ids.get(w.experiment), w.model_name, discovery.source_of(w.experiment), w)
               for w in watches]
    return FleetPlan(watched, discovery.refused_watches, models)
