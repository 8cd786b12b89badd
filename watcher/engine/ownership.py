"""Model ownership: a registered model is fed by one source, and a second experiment is refused.

The owners of a model are the experiments the config's ``watches`` name for it (explicit: all of
them, always allowed), else the one experiment of its claim (the registered-model tag
``registry-watcher.source_experiment``). Discovery (:func:`settle_owners`) decides for every tagged
experiment before it becomes a watch:

* an unclaimed model with no versions (or not created yet) is claimed by the candidate
  experiment created first (so every replica, and every search, picks the same one);
* an unclaimed model that already has versions (registered by hand, by a training job, or by an
  earlier release of the watcher: the upgrade path) is claimed only by an experiment whose runs
  those versions came from (the one that gave the newest version); otherwise every candidate is
  refused until an operator claims it on purpose;
* a claimed model is fed only by its claimant; any other tagged experiment is refused.

A refusal is a :class:`Refusal` (``watch_refused``, the gauge
``registry_watcher_watches_refused{model}``); none of the refused experiment's runs is ever read.
The tick checks the claim again before it decides any run (:func:`registration_refusal`), in case
discovery is stale (the claim moved since the last search). ``registry-watcher claim`` moves
ownership on purpose (:func:`move_claim`), recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException

from watcher.config import WatcherConfig
from watcher.obs.logs import get_logger
from watcher.store import experiments, keys, registry
from watcher.store.audit import AuditTrail
from watcher.store.ownership import ClaimRecord, claim_of, record_claim, version_sources, write_claim

log = get_logger("watcher.discovery")

KIND_OWNERSHIP = "ownership"
"""A refusal because another experiment feeds the model."""
KIND_INVALID = "invalid"
"""A refusal because the tag or its profile cannot make a watch (empty tag, unknown profile, ...)."""


@dataclass(frozen=True)
class Refusal:
    """A tagged experiment that is not watched, and why (``WatchSet.refused``, ``plan_watches``).

    ``kind`` is :data:`KIND_OWNERSHIP` (another experiment feeds the model: ``owner_*`` name it) or
    :data:`KIND_INVALID` (an empty tag, an unknown profile, a prompt's name, the audit or a scoring
    experiment, an invalid watch: ``owner_*`` are None)."""

    model_name: str
    experiment: str
    experiment_id: str
    owner_experiment: str | None
    owner_experiment_id: str | None
    reason: str
    kind: str = KIND_OWNERSHIP

    def as_json(self) -> dict[str, str | None]:
        """This refusal as a JSON-ready dict (``status --json``, the API)."""
        return {"model_name": self.model_name, "experiment": self.experiment, "experiment_id": self.experiment_id,
                "owner_experiment": self.owner_experiment, "owner_experiment_id": self.owner_experiment_id,
                "reason": self.reason, "kind": self.kind}


@dataclass(frozen=True)
class Candidate:
    """A tagged experiment that would make a watch of ``model_name``, before ownership is settled."""

    experiment: str
    experiment_id: str
    model_name: str
    created_ms: int = 0
    """The experiment's creation time: the first-created candidate claims an unclaimed model."""


@dataclass(frozen=True)
class Owners:
    """What :func:`settle_owners` decided: the candidates kept, the refused, the models as read."""

    kept: tuple[Candidate, ...]
    refused: tuple[Refusal, ...]
    models: Mapping[str, RegisteredModel]
    """Model name -> the registered model as read (claims just written are not in its tags)."""


def experiment_label(client: MlflowClient, experiment_id: str) -> str:
    """An experiment's name by id, or ``experiment <id>`` when it cannot be read (deleted, denied)."""
    try:
        return experiments.name_of(client, experiment_id)
    except MlflowException:
        return f"experiment {experiment_id}"


def settle_owners(client: MlflowClient, config: WatcherConfig, candidates: Sequence[Candidate],
                  models: Mapping[str, RegisteredModel], *, write: bool) -> Owners:
    """Keep the candidates that own (or may claim) their model and refuse the rest; ``write``
    records the claims it makes (the daemon's discovery), else nothing is written (``plan_watches``).

    ``models`` are the candidates' registered models as read in one batch (missing: not created)."""
    explicit: dict[str, list[str]] = {}
    for watch in config.watches:
        explicit.setdefault(watch.model_name, []).append(watch.experiment)
    by_model: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_model.setdefault(candidate.model_name, []).append(candidate)
    kept: list[Candidate] = []
    refused: list[Refusal] = []
    for model_name, group in sorted(by_model.items()):
        if model_name in explicit:
            named = explicit[model_name]
            by_config = f"the config's watches name {', '.join(named)} for '{model_name}'"
            refused.extend(_refusal_for(c, named[0], experiments.find(client, named[0]), by_config) for c in group)
            continue
        owner_id, why = _owner_of(client, models.get(model_name), group, write)
        owner_name = next((c.experiment for c in group if c.experiment_id == owner_id), None) \
            or experiment_label(client, owner_id)  # a candidate's name is known: no request per model
        for candidate in group:
            if candidate.experiment_id == owner_id:
                kept.append(candidate)
            else:
                refused.append(_refusal_for(candidate, owner_name, owner_id,
                                       why or f"'{model_name}' is fed by {owner_name} ({owner_id})"))
    return Owners(tuple(kept), tuple(refused), models)


def _refusal_for(candidate: Candidate, owner: str | None, owner_id: str | None, why: str) -> Refusal:
    return Refusal(candidate.model_name, candidate.experiment, candidate.experiment_id, owner, owner_id,
                   f"another source feeds the model: {why}")


def _owner_of(client: MlflowClient, model: RegisteredModel | None, group: Sequence[Candidate],
              write: bool) -> tuple[str, str | None]:
    """The id of the experiment that feeds the model (claimed now when unclaimed and one may claim
    it), and why the others are refused when none may (None: the claim says it all)."""
    claim = claim_of(registry.tags_of(model)) if model is not None else None
    if claim is not None:
        return claim, None
    model_name = group[0].model_name
    sources = version_sources(client, model_name) if model is not None else {}
    ids = {c.experiment_id for c in group}
    if not sources:
        claimant = min(group, key=lambda c: (c.created_ms, int(c.experiment_id) if c.experiment_id.isdigit() else 0,
                                             c.experiment_id)).experiment_id
        reason = "first tagged experiment of a model with no versions"
    elif ids & set(sources):
        claimant = max(ids & set(sources), key=lambda exp_id: sources[exp_id])
        reason = "its runs gave the model's existing versions"
    else:
        newest = max(sources, key=lambda exp_id: sources[exp_id])
        return newest, (f"'{model_name}' already has versions from {_labels(client, sources)} and none from this "
                        "experiment: refused until claimed on purpose (registry-watcher claim)")
    if write:
        registry.ensure_registered_model(client, model_name)
        write_claim(client, model_name, claimant)
        log.info("model_claimed", model_name=model_name, experiment_id=claimant,
                 experiment=experiment_label(client, claimant), reason=reason, by="watcher")
    return claimant, None


def _labels(client: MlflowClient, sources: Mapping[str, int]) -> str:
    return ", ".join(f"{experiment_label(client, exp_id)} ({exp_id})" for exp_id in sorted(sources))


def registration_refusal(client: MlflowClient, config: WatcherConfig, experiment: str, experiment_id: str,
                         model: RegisteredModel) -> Refusal | None:
    """The tick's check before it decides any run of a watch (a defence in depth: discovery may be
    stale): None when ``experiment`` may feed ``model``. An unclaimed model is claimed here by the
    first watch that feeds it (a configured one, or a discovered one whose claim tag was removed)."""
    model_name = str(model.name)
    if any(w.experiment == experiment and w.model_name == model_name for w in config.watches):
        claim = claim_of(registry.tags_of(model))
        if claim is None:
            write_claim(client, model_name, experiment_id)  # the first to register under this watcher
        return None
    claim = claim_of(registry.tags_of(model))
    if claim is None:
        write_claim(client, model_name, experiment_id)
        return None
    if claim == experiment_id:
        return None
    owner = experiment_label(client, claim)
    return Refusal(model_name, experiment, experiment_id, owner, claim,
                   f"another source feeds the model: '{model_name}' is fed by {owner} ({claim}); "
                   "no run of this experiment is registered into it")


class ClaimError(Exception):
    """``claim`` cannot move ownership (no such model or experiment, a prompt); the CLI prints it."""


def move_claim(client: MlflowClient, config: WatcherConfig, model_name: str, experiment: str, reason: str,
               by: str) -> ClaimRecord | None:
    """Make ``experiment`` (a name, or an id) the one that feeds ``model_name``, on purpose: the
    claim tag is written and the move recorded in the audit trail. None when it already does."""
    if not reason.strip():
        raise ClaimError("a reason is needed: it is recorded in the audit trail")
    model = registry.find_model(client, model_name)
    if model is None:
        raise ClaimError(f"no registered model '{model_name}'")
    if registry.tags_of(model).get(keys.PROMPT, "").lower() == "true":
        raise ClaimError(f"'{model_name}' is an MLflow prompt, not a model")
    experiment_id = _experiment_id(client, experiment)
    name = experiment_label(client, experiment_id)
    previous = claim_of(registry.tags_of(model))
    if previous == experiment_id:
        return None
    write_claim(client, model_name, experiment_id)
    before = "" if previous is None else f"{experiment_label(client, previous)} ({previous})"
    record = record_claim(client, AuditTrail(config.audit_experiment),
                          ClaimRecord(model_name, before, f"{name} ({experiment_id})", by, reason))
    log.info("model_claimed", model_name=model_name, experiment_id=experiment_id, experiment=name, reason=reason,
             by=by)
    return record


def _experiment_id(client: MlflowClient, experiment: str) -> str:
    """The id of an active experiment given by name, else by id; ClaimError when neither exists."""
    found = experiments.find(client, experiment)
    if found is not None:
        return found
    if experiment.isdigit():
        try:
            experiments.name_of(client, experiment)
        except MlflowException:
            pass
        else:
            return experiment
    raise ClaimError(f"no active experiment named (or with id) '{experiment}'")
