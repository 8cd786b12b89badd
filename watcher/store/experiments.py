"""Experiments: look one up by name, or get-or-create the watcher's own (audit, scoring).

One implementation and one cache for every caller: :class:`ExperimentIds`. An experiment's id
never changes, so an idle poll never looks one up again; the process keeps one instance
(:data:`IDS`), which the module functions use and the engine's ``Session`` holds, and discovery
adds the ids it found to it (:meth:`ExperimentIds.remember`). Ids are kept per (tracking URI,
name). Creation tolerates a race: when another writer (the CLI, a replica) creates it first, the
create fails and the name is read again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from mlflow import MlflowClient

from watcher.store import keys

NAMES_KEPT = 10_000
"""Experiment id -> name pairs remembered by :meth:`ExperimentIds.name_of` (least recently used go first)."""


def _uri(client: MlflowClient) -> str:
    return str(getattr(client, "tracking_uri", ""))


class ExperimentIds:
    """Experiment name -> id (and id -> name), remembered once read: the one owner of that fact (thread-safe)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._names: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, client: MlflowClient, name: str) -> str | None:
        """The id of ``name`` when already known (no request)."""
        with self._lock:
            return self._ids.get((_uri(client), name))

    def cached_many(self, client: MlflowClient, names: Iterable[str]) -> dict[str, str]:
        """Name -> id of those of ``names`` already known (no request; one lock for all: a fleet's tick)."""
        uri = _uri(client)
        with self._lock:
            return {name: found for name in names if (found := self._ids.get((uri, name))) is not None}

    def remember(self, client: MlflowClient, ids: Mapping[str, str]) -> None:
        """Keep name -> id pairs learnt elsewhere (discovery's search), so no tick looks them up."""
        uri = _uri(client)
        with self._lock:
            self._ids.update({(uri, name): str(exp_id) for name, exp_id in ids.items()})

    def _keep(self, client: MlflowClient, name: str, experiment_id: str) -> str:
        with self._lock:
            self._ids[(_uri(client), name)] = str(experiment_id)
        return str(experiment_id)

    def find(self, client: MlflowClient, name: str, *, deleted: str = "none") -> str | None:
        """The id of the active experiment ``name``, or None when it does not exist.

        A deleted one is None (``deleted="none"``, a watched experiment: polling goes on), its id
        (``"id"``, for reports that show what it holds) or an error naming the config key to change
        (any other value, the watcher's own experiments: their history must not silently vanish)."""
        known = self.cached(client, name)
        if known is not None:
            return known
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return None
        if experiment.lifecycle_stage != "active":
            if deleted == "none":
                return None
            if deleted == "id":
                return str(experiment.experiment_id)
            raise RuntimeError(f"the {_kind(deleted)} experiment '{name}' is deleted; restore it or set {deleted}")
        return self._keep(client, name, experiment.experiment_id)

    def get_or_create(self, client: MlflowClient, name: str, kind: str, setting: str) -> str:
        """The id of the watcher's own experiment ``name`` (tagged ``watcher.kind=<kind>``), created
        when missing; a deleted one is an error naming ``setting``, the config key that moves it."""
        known = self.cached(client, name)
        if known is not None:
            return known
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
        return self._keep(client, name, experiment.experiment_id)

    def name_of(self, client: MlflowClient, experiment_id: str) -> str:
        """The name of an experiment, by id, remembered (an id never changes; a name rarely does)."""
        key = (_uri(client), str(experiment_id))
        with self._lock:
            if key in self._names:
                self._names.move_to_end(key)
                return self._names[key]
        name = _fetch_name(client, experiment_id)
        with self._lock:
            self._names[key] = name
            while len(self._names) > NAMES_KEPT:
                self._names.popitem(last=False)
        return name


IDS = ExperimentIds()
"""The process's experiment ids (the engine's ``Session`` holds this one)."""


def _kind(setting: str) -> str:
    return "audit" if setting == "audit_experiment" else "scoring"


def find(client: MlflowClient, name: str, *, deleted: str = "none") -> str | None:
    """:meth:`ExperimentIds.find` on the process's ids."""
    return IDS.find(client, name, deleted=deleted)


def get_or_create(client: MlflowClient, name: str, kind: str, setting: str) -> str:
    """:meth:`ExperimentIds.get_or_create` on the process's ids."""
    return IDS.get_or_create(client, name, kind, setting)


def name_of(client: MlflowClient, experiment_id: str) -> str:
    """:meth:`ExperimentIds.name_of` on the process's ids."""
    return IDS.name_of(client, experiment_id)


def _fetch_name(client: MlflowClient, experiment_id: str) -> str:
    """The name of an experiment, by id: one request, not remembered."""
    return str(client.get_experiment(experiment_id).name)


def ping(client: MlflowClient) -> None:
    """One cheap request that raises when the tracking server cannot be reached."""
    client.search_experiments(max_results=1)
