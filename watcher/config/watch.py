"""One watch: an experiment, the registered model its passing runs become, gates, aliases, scoring.

:class:`WatchProfile` is every key of a watch but ``experiment`` and ``model_name``: what a
``profiles`` entry gives a watch found by discovery (``watcher.config.discover``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from watcher.config.approvals import ApprovalConfig
from watcher.config.base import Strict
from watcher.config.gates import GateConfig
from watcher.config.scoring import ScoringConfig

AliasPolicy = Literal["record", "alert", "revert"]


class WatchProfile(Strict):
    """Everything a watch says but which experiment and which model (a ``profiles`` entry)."""

    artifact_path: str = "model"
    """Name the model was logged under (LoggedModel name or run artifact folder)."""
    gates: list[GateConfig] = Field(default_factory=list)
    """Validation gates; all run, all reasons kept. The model-presence check is implicit."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Governance tags set verbatim on every registered version."""
    staging_alias: str = "staging"
    """Alias moved to the passing version whose run ended last."""
    production_alias: str = "production"
    """Alias read for the champion gate and for scoring; moved only by promote/rollback."""
    production_policy: AliasPolicy = "record"
    """A move of production not made by promote/rollback: ``record`` it (and score), ``alert`` (an
    error event too), or ``revert`` it. ``record`` by default: it was the behaviour before policies."""
    staging_policy: AliasPolicy = "record"
    """The same for the staging alias; ``record`` (the default) does not watch staging moves at all."""
    scoring: ScoringConfig | None = None
    """Optional batch scoring on production alias changes; unset disables scoring."""
    extends: str | None = None
    """Name of a profile whose keys this block takes under its own (mappings such as ``tags`` and
    ``scoring`` merge, lists such as ``gates`` are replaced); unset takes only the defaults. See
    ``watcher.config.profiles``."""
    run_filter: str | None = None
    """MLflow search-runs filter (e.g. ``tags.candidate = 'true'``) ANDed with the watcher's own on
    the server; runs outside it are left alone. Unset takes every finished run of the experiment."""
    approval: ApprovalConfig | None = None
    """Production only after named approvers approved a request (issue 27); unset: ``promote`` moves at once."""

    @field_validator("run_filter")
    @classmethod
    def _valid_filter(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from mlflow.utils.search_utils import SearchUtils

        try:
            SearchUtils.parse_search_filter(value)  # type: ignore[no-untyped-call]
        except Exception as exc:  # noqa: BLE001 - MLflow's parser raises MlflowException
            raise ValueError(f"not a valid MLflow search filter: {getattr(exc, 'message', exc)}") from None
        return value.strip()


class WatchConfig(WatchProfile):
    """One experiment watched for one registered model."""

    experiment: str = Field(min_length=1)
    """Experiment name to poll; it may not exist yet (a warning, and polling goes on)."""
    model_name: str = Field(min_length=1)
    """Registered model that passing runs become versions of; created when missing."""

    @classmethod
    def from_profile(cls, profile: WatchProfile, experiment: str, model_name: str) -> WatchConfig:
        """The watch a discovered experiment gets: its profile's keys, its experiment and model."""
        given = {key: getattr(profile, key) for key in profile.model_fields_set}
        return cls.model_validate({**given, "experiment": experiment, "model_name": model_name})

    @property
    def scoring_experiment(self) -> str | None:
        """Name of the experiment where scoring runs go, or None without scoring."""
        if self.scoring is None:
            return None
        return self.scoring.experiment or f"{self.experiment}-scoring"


