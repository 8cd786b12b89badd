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


def find(client: MlflowClient, name: str, *, deleted: str = "none") -> str | None:
    """The id of the active experiment ``name``, or None when it does not exist.

    A deleted one is None (``deleted="none"``, a watched experiment: polling goes on), its id
    (``"id"``, for reports that show what it holds) or an error naming the config key to change
    (any other value, the watcher's own experiments: their history must not silently vanish)."""
    key = _key(client, name)
    with _LOCK:
        if key in _IDS:
            return _IDS[key]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return None
    if experiment.lifecycle_stage != "active":
        if deleted == "none":
            return None
        if deleted == "id":
            return str(experiment.experiment_id)
        raise RuntimeError(f"the {_kind(deleted)} experiment '{name}' is deleted; restore it or set {deleted}")
    with _LOCK:
        _IDS[key] = experiment.experiment_id
    return str(experiment.experiment_id)


def _kind(setting: str) -> str:
    return "audit" if setting == "audit_experiment" else "scoring"


def get_or_create(client: MlflowClient, name: str, kind: str, setting: str) -> str:
    """The id of the watcher's own experiment ``name`` (tagged ``watcher.kind=<kind>``), created
    when missing; a deleted one is an error naming ``setting``, the config key that moves it."""
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
        raise RuntimeError(f"the {kind} experiment '{name}' is deleted; restore it or set {setting}")
    with _LOCK:
        _IDS[key] = experiment.experiment_id
    return str(experiment.experiment_id)


def name_of(client: MlflowClient, experiment_id: str) -> str:
    """The name of an experiment, by id."""
    return str(client.get_experiment(experiment_id).name)


def ping(client: MlflowClient) -> None:
    """One cheap request that raises when the tracking server cannot be reached."""
    client.search_experiments(max_results=1)
