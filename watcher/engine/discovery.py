"""Onboarding by experiment tag (the ``discover`` block): the discovered part of the watch set.

:meth:`Discovery.refresh` makes one paged ``search_experiments`` for experiments carrying
``discover.tag`` (the daemon calls it every ``discover.interval_seconds``, never every poll) and
rebuilds the discovered watches: the tag's value is the registered model, ``discover.profile_tag``
names the profile (none: ``default``). :meth:`Discovery.watches` is the effective set: the
configured watches, then the discovered ones; an explicit ``watches`` entry wins for the same
experiment.

* ``watch_discovered`` (info: experiment, model_name, profile) when a watch appears or changes;
* ``watch_dropped`` (experiment, model_name, reason) when it stops: info when the tag was removed
  or the experiment deleted, warning when the experiment is refused (an unknown profile, an empty
  tag value, a prompt's name, the audit experiment or another watch's scoring experiment).
  A refusal is said once, not every search. Nothing is deleted: versions, aliases, tags and the
  audit trail stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Experiment
from pydantic import ValidationError

from watcher.config import DEFAULT_PROFILE, WatchConfig, WatcherConfig, format_errors
from watcher.obs import metrics
from watcher.obs.logs import get_logger
from watcher.store import batch_reads, keys, registry

log = get_logger("watcher.discovery")


@dataclass(frozen=True)
class Discovered:
    """One watch found by its experiment's tag."""

    watch: WatchConfig
    profile: str
    experiment_id: str


@dataclass
class Discovery:
    """The discovered watches, rebuilt by :meth:`refresh`; lost on restart (found again at start-up)."""

    found: dict[str, Discovered] = field(default_factory=dict)
    """Experiment name -> its discovered watch."""
    refused: dict[str, str] = field(default_factory=dict)
    """Experiment name -> why it is not watched (said once per reason)."""
    not_prompts: set[str] = field(default_factory=set)
    """Model names known to be models, not prompts (a name's kind never changes once it exists)."""
    searched: bool = False
    """True once a search has succeeded (``status`` and the daemon's first tick wait for it)."""

    def watches(self, config: WatcherConfig) -> list[WatchConfig]:
        """The effective watch set: the configured watches, then the discovered ones."""
        configured = {w.experiment for w in config.watches}
        return list(config.watches) + [d.watch for name, d in sorted(self.found.items()) if name not in configured]

    def source_of(self, experiment: str) -> str:
        """``config``, or ``discovered (experiment tag, profile P)``, for ``status``."""
        found = self.found.get(experiment)
        return "config" if found is None else f"discovered (experiment tag, profile {found.profile})"

    def experiment_ids(self) -> dict[str, str]:
        """Experiment name -> id of every discovered watch (so the tick need not look them up)."""
        return {name: d.experiment_id for name, d in self.found.items()}

    def refresh(self, client: MlflowClient, config: WatcherConfig) -> None:
        """Search the tagged experiments and rebuild the discovered watches (no-op without ``discover``)."""
        if config.discover is None:
            self._apply({}, {}, {}, gone="the discover block was removed from the config")
            return
        tag = config.discover.tag
        configured = {w.experiment for w in config.watches}
        scoring = {w.scoring_experiment for w in config.watches if w.scoring_experiment}
        found: dict[str, Discovered] = {}
        refused: dict[str, str] = {}
        models: dict[str, str] = {}
        for experiment in batch_reads.tagged_experiments(client, tag):
            name = str(experiment.name)
            if name in configured:
                continue  # an explicit watches entry wins
            models[name], verdict = self._candidate(client, config, experiment, scoring)
            if isinstance(verdict, Discovered):
                found[name] = verdict
            else:
                refused[name] = verdict
        for name, item in found.items():  # a discovered watch's scoring experiment is never a candidate
            if item.watch.scoring_experiment in found or item.watch.scoring_experiment in configured:
                refused[name] = f"its scoring experiment '{item.watch.scoring_experiment}' is watched"
        self._apply({k: v for k, v in found.items() if k not in refused}, refused, models)
        self.searched = True

    def _candidate(self, client: MlflowClient, config: WatcherConfig, experiment: Experiment,
                   scoring: set[str]) -> tuple[str, Discovered | str]:
        """A tagged experiment's model name, and its watch or why it is refused."""
        assert config.discover is not None
        name, tags = str(experiment.name), dict(experiment.tags or {})
        model = tags.get(config.discover.tag, "").strip()
        profile = tags.get(config.discover.profile_tag, "").strip() or DEFAULT_PROFILE
        reason = self._tag_refusal(client, config, name, model, profile, scoring)
        if reason is not None:
            return model, reason
        try:
            watch = WatchConfig.from_profile(config.profiles[profile], name, model)
        except ValidationError as exc:
            return model, f"invalid watch: {format_errors(exc)}"
        return model, Discovered(watch, profile, str(experiment.experiment_id))

    def _tag_refusal(self, client: MlflowClient, config: WatcherConfig, name: str, model: str, profile: str,
                 scoring: set[str]) -> str | None:
        tag = config.discover.tag if config.discover else keys.DISCOVER_MODEL
        if not model:
            return f"the tag '{tag}' is empty: it must name the registered model"
        if profile not in config.profiles:
            return f"unknown profile '{profile}' (known: {', '.join(sorted(config.profiles)) or 'none'})"
        if name == config.audit_experiment:
            return "it is the audit_experiment"
        if name in scoring:
            return "it is a watch's scoring experiment"
        if model not in self.not_prompts:
            existing = registry.find_model(client, model)
            if existing is not None and registry.tags_of(existing).get(keys.PROMPT, "").lower() == "true":
                return f"'{model}' is an MLflow prompt, not a model"
            if existing is not None:
                self.not_prompts.add(model)
        return None

    def _apply(self, found: dict[str, Discovered], refused: dict[str, str], models: dict[str, str],
               gone: str = "the experiment lost its tag or was deleted") -> None:
        for name, item in found.items():
            before = self.found.get(name)
            if before is None or before.watch != item.watch or before.profile != item.profile:
                log.info("watch_discovered", experiment=name, model_name=item.watch.model_name, profile=item.profile)
                metrics.init_model(item.watch.model_name)  # its counters exist at 0 from now on
        for name, before in self.found.items():
            if name in found:
                continue
            reason = refused.get(name, gone)
            (log.warning if name in refused else log.info)("watch_dropped", experiment=name,
                                                             model_name=before.watch.model_name, reason=reason)
        for name, reason in refused.items():
            if name not in self.found and self.refused.get(name) != reason:
                log.warning("watch_dropped", experiment=name, model_name=models.get(name) or None, reason=reason)
        self.found, self.refused = found, refused


def find_watch(client: MlflowClient, config: WatcherConfig, model_name: str) -> WatchConfig | None:
    """The watch of ``model_name`` for the CLI (promote, rollback, history): a configured one, else a
    discovered one (one experiment search, only when the config has ``discover``)."""
    watch = config.watch_for(model_name)
    if watch is not None or config.discover is None:
        return watch
    discovery = Discovery()
    discovery.refresh(client, config)
    return next((w for w in discovery.watches(config) if w.model_name == model_name), None)
