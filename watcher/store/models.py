"""Where a run's model lives, and what its ``MLmodel`` file says (signature, flavors).

:class:`ModelRef` is what the gates see of the model (re-exported by ``handlers.base``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.signature import ModelSignature

from watcher.store.codec import truncate
from watcher.store.errors import is_unreachable


@dataclass(frozen=True)
class ModelRef:
    """Where the run's model lives: a LoggedModel (``models:/m-...``) or a run artifact folder."""

    source: str
    model_id: str | None
    signature: ModelSignature | None
    error: str | None = None
    """Why the model's ``MLmodel`` could not be read (not YAML, not a model); None when it could."""
    flavors: Mapping[str, Any] | None = None
    """The MLmodel file's ``flavors`` (read once with the signature); None when it could not be read."""


def resolve_model(client: MlflowClient, run: Run, artifact_path: str) -> ModelRef | None:
    """Find the run's model under ``artifact_path``: a LoggedModel output, else a run artifact."""
    outputs = run.outputs.model_outputs if run.outputs else []
    for output in sorted(outputs, key=lambda o: o.step, reverse=True):
        logged = client.get_logged_model(output.model_id)
        if logged.name == artifact_path:
            return _ref(f"models:/{logged.model_id}", logged.model_id, f"{logged.artifact_location.rstrip('/')}/MLmodel")
    names = {a.path for a in client.list_artifacts(run.info.run_id, artifact_path)}
    if f"{artifact_path}/MLmodel" in names:
        base = f"{run.info.artifact_uri}/{artifact_path}"
        return _ref(base, None, f"{base}/MLmodel")
    return None


def _ref(source: str, model_id: str | None, mlmodel_uri: str) -> ModelRef:
    """The reference with the MLmodel file read in one download: the signature and flavors, the
    reason when it is not a readable model description, or neither when it is missing.

    The file is read at the model's artifact location rather than through ``get_model_info``,
    which resolves a ``models:/`` URI twice more. An unreachable server is raised (an outage is
    nobody's verdict on the run)."""
    try:
        model = Model.load(mlmodel_uri)
    except MlflowException as exc:
        if is_unreachable(exc):
            raise
        return ModelRef(source, model_id, None)
    except (yaml.YAMLError, AttributeError, TypeError, ValueError, KeyError) as exc:
        return ModelRef(source, model_id, None, truncate(f"{type(exc).__name__}: {exc}".replace("\n", " "), 500))
    return ModelRef(source, model_id, model.signature, None, dict(model.flavors or {}))


def version_flavors(model_name: str, version: str) -> dict[str, Any]:
    """The ``flavors`` of a registered version's MLmodel file (read before scoring loads it)."""
    return dict(mlflow.models.get_model_info(f"models:/{model_name}/{version}").flavors or {})
