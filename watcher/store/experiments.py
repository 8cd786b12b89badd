"""Experiments: look one up by name, or get-or-create the watcher's own (audit, scoring).

One implementation for every caller. Ids are cached per (tracking URI, name): an experiment's id
never changes, so an idle poll never looks one up again. Creation tolerates a race: when another
writer (the CLI, a replica) creates it first, the create fails and the name is read again.
"""

from __future__ import annotations

import threading

from mlflow import MlflowClient

from watcher.store import keys

_IDS: dict[tuple[str, str], str] = {}
_LOCK = threading.Lock()


def _key(client: MlflowClient, name: str) -> tuple[str, str]:
    return str(getattr(client, "tracking_uri", "")), name


def find(client: MlflowClient, name: str) -> str | None:
    """The id of the active experiment ``name``, or None when it does not exist or is deleted."""
    key = _key(client, name)
    with _LOCK:
        if key in _IDS:
            return _IDS[key]
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage != "active":
        return None
    with _LOCK:
        _IDS[key] = experiment.experiment_id
    return str(experiment.experiment_id)


def get_or_create(client: MlflowClient, name: str, kind: str) -> str:
    """The id of the watcher's own experiment ``name`` (tagged ``watcher.kind=<kind>``), created
    when missing; a deleted one is an error naming the fix."""
    key = _key(client, name)
    with _LOCK:
        if key in _IDS:
            return _IDS[key]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            client.create_experiment(name, tags={keys.KIND: kind})
        except Exception:  # noqa: BLE001, S110 - another writer created it first; read it below
            pass
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise RuntimeError(f"cannot create the {kind} experiment '{name}'")
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(f"the {kind} experiment '{name}' is deleted; restore it or configure another name")
    with _LOCK:
        _IDS[key] = experiment.experiment_id
    return str(experiment.experiment_id)


def name_of(client: MlflowClient, experiment_id: str) -> str:
    """The name of an experiment, by id."""
    return str(client.get_experiment(experiment_id).name)


def ping(client: MlflowClient) -> None:
    """One cheap request that raises when the tracking server cannot be reached."""
    client.search_experiments(max_results=1)
