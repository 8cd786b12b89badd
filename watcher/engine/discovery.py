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
* ``watch_refused`` (warning: experiment, experiment_id, model_name, owner_experiment,
  owner_experiment_id, reason) when another experiment feeds the model (``watcher.engine.ownership``).

Every refusal is a :class:`~watcher.engine.ownership.Refusal` in :attr:`Discovery.refusals`
(``WatchSet.refused``). :func:`plan_watches` is the same decision for the CLI without a daemon
(``check-config``, ``status``, ``once``): the watches it would make and those it would refuse,
with nothing written. The daemon's search (``refresh(..., write=True)``) also records the claims it
makes and each new watch's first sighting and onboarding window (``watcher.engine.onboarding``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Experiment
from pydantic import ValidationError

from watcher.config import DEFAULT_PROFILE, WatchConfig, WatcherConfig, format_errors
from watcher.engine.onboarding import open_windows, record_first_sight
from watcher.engine.ownership import KIND_INVALID, Candidate, Owners, Refusal, settle_owners
from watcher.obs import metrics, metrics_fleet
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
    refusals: dict[str, Refusal] = field(default_factory=dict)
    """Experiment name -> why it is not watched, every kind (the invalid ones of :attr:`refused` too)."""
    last_search: tuple[int, frozenset[str]] | None = None
    """When the last successful search ran (epoch ms) and which experiments carried the tag then:
    an experiment tagged since was first seen no earlier than that (``watcher.engine.onboarding``)."""

    @property
    def refused_watches(self) -> tuple[Refusal, ...]:
        """Every current refusal, by experiment name (``WatchSet.refused``)."""
        return tuple(self.refusals[name] for name in sorted(self.refusals))

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

    def refresh(self, client: MlflowClient, config: WatcherConfig, *, write: bool = False) -> None:
        """Search the tagged experiments and rebuild the discovered watches (no-op without ``discover``).

        ``write`` (the daemon's watch set, ``once``) records the claims made, first sightings and
        onboarding windows; without it nothing is written (``status``, ``plan_watches``)."""
        if config.discover is None:
            self._apply({}, {}, {}, gone="the discover block was removed from the config")
            self._settle_refusals({}, ())
            return
        started = int(time.time() * 1000)
        tagged, found, refused, models = self._search(client, config)
        candidates = [Candidate(name, d.experiment_id, d.watch.model_name, int(e.creation_time or 0))
                      for e in tagged if (name := str(e.name)) in found and name not in refused
                      for d in [found[name]]]
        owners = self._owners(client, config, candidates, tagged, write)
        kept = {c.experiment for c in owners.kept}
        ids = {str(e.name): str(e.experiment_id) for e in tagged}
        invalid = {name: Refusal(models.get(name, ""), name, ids.get(name, ""), None, None, reason, KIND_INVALID)
                   for name, reason in refused.items()}
        self._apply({k: v for k, v in found.items() if k in kept}, refused, models,
                    elsewhere=frozenset(r.experiment for r in owners.refused))
        self._settle_refusals(invalid, owners.refused)
        self.searched = True
        self.last_search = (started, frozenset(ids))

    def _search(self, client: MlflowClient, config: WatcherConfig
                ) -> tuple[list[Experiment], dict[str, Discovered], dict[str, str], dict[str, str]]:
        """The tagged experiments, the watches they make, the refused ones with why, each one's model name."""
        assert config.discover is not None
        tag = config.discover.tag
        configured = {w.experiment for w in config.watches}
        scoring = {w.scoring_experiment for w in config.watches if w.scoring_experiment}
        found: dict[str, Discovered] = {}
        refused: dict[str, str] = {}
        models: dict[str, str] = {}
        tagged = batch_reads.tagged_experiments(client, tag)
        for experiment in tagged:
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
        return tagged, found, refused, models

    def _owners(self, client: MlflowClient, config: WatcherConfig, candidates: list[Candidate],
                tagged: list[Experiment], write: bool) -> Owners:
        """The candidates that own their model and the refused others; with ``write``, the first
        sightings, claims and onboarding windows are recorded."""
        assert config.discover is not None
        seen: dict[str, int] = {}
        if write:
            before = self.last_search
            earliest = {} if before is None else {c.experiment: before[0] for c in candidates
                                                  if c.experiment not in before[1]}
            seen = record_first_sight(client, candidates, {str(e.name): dict(e.tags or {}) for e in tagged}, earliest)
        models = batch_reads.models_by_name(client, {c.model_name for c in candidates})
        owners = settle_owners(client, config, candidates, models, write=write)
        if write:
            open_windows(client, config.discover, owners.kept, seen, owners.models)
        return owners

    def _settle_refusals(self, invalid: dict[str, Refusal], ownership: tuple[Refusal, ...]) -> None:
        """Keep every refusal; say each ownership refusal once (``watch_refused``) and count them per model."""
        current = {**invalid, **{r.experiment: r for r in ownership}}
        for refusal in ownership:
            if self.refusals.get(refusal.experiment) != refusal:
                log.warning("watch_refused", experiment=refusal.experiment, experiment_id=refusal.experiment_id,
                            model_name=refusal.model_name, owner_experiment=refusal.owner_experiment,
                            owner_experiment_id=refusal.owner_experiment_id, reason=refusal.reason)
        counts: dict[str, int] = {}
        for refusal in ownership:
            counts[refusal.model_name] = counts.get(refusal.model_name, 0) + 1
        before = {r.model_name for r in self.refusals.values() if r.kind != KIND_INVALID}
        for model_name in before | set(counts):
            metrics_fleet.set_watches_refused(model_name, counts.get(model_name, 0))
        self.refusals = current

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
               gone: str = "the experiment lost its tag or was deleted",
               elsewhere: frozenset[str] = frozenset()) -> None:
        for name, item in found.items():
            before = self.found.get(name)
            if before is None or before.watch != item.watch or before.profile != item.profile:
                log.info("watch_discovered", experiment=name, model_name=item.watch.model_name, profile=item.profile)
                metrics.init_model(item.watch.model_name)  # its counters exist at 0 from now on
        for name, before in self.found.items():
            if name in found or name in elsewhere:  # refused as another source feeds it: watch_refused says so
                continue
            reason = refused.get(name, gone)
            (log.warning if name in refused else log.info)("watch_dropped", experiment=name,
                                                             model_name=before.watch.model_name, reason=reason)
        for name, reason in refused.items():
            if name not in self.found and self.refused.get(name) != reason:
                log.warning("watch_dropped", experiment=name, model_name=models.get(name) or None, reason=reason)
        self.found, self.refused = found, refused


@dataclass(frozen=True)
class WatchPlan:
    """The watches a config makes and the tagged experiments it refuses, as the CLI sees them."""

    watches: tuple[WatchConfig, ...]
    """The effective watch set: the configured watches, then the discovered ones."""
    refused: tuple[Refusal, ...]
    """Tagged experiments that are not watched, each with its reason (ownership or invalid)."""


def plan_watches(client: MlflowClient, config: WatcherConfig) -> WatchPlan:
    """What the daemon would watch and refuse now, with no daemon and nothing written (one
    experiment search and one model search; none without ``discover``). For ``check-config``,
    ``status`` and ``once``. A model nobody claimed yet shows the experiment that would claim it
    as watched. Errors of the tracking server are raised."""
    if config.discover is None:
        return WatchPlan(tuple(config.watches), ())
    discovery = Discovery()
    discovery.refresh(client, config)
    return WatchPlan(tuple(discovery.watches(config)), discovery.refused_watches)


def find_watch(client: MlflowClient, config: WatcherConfig, model_name: str) -> WatchConfig | None:
    """The watch of ``model_name`` for the CLI (promote, rollback, history): a configured one, else a
    discovered one (one experiment search, only when the config has ``discover``)."""
    watch = config.watch_for(model_name)
    if watch is not None or config.discover is None:
        return watch
    discovery = Discovery()
    discovery.refresh(client, config)
    return next((w for w in discovery.watches(config) if w.model_name == model_name), None)
