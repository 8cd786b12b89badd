"""Whether the watcher's own MLflow user can read a watched experiment, and whether the server answers.

MLflow's basic-auth answers a ``search_runs`` over a denied experiment, alone or in a batch, with
200 and no runs: the denial is invisible to the fleet's batched reads. It shows elsewhere:
``experiments/get`` answers 403, and ``search_experiments`` leaves the experiment out. So:

* :func:`probe_experiment`: one ``get_experiment`` (by id, else by name); the reason it cannot be
  read (permission denied, deleted, renamed, gone), or None when it can;
* :func:`unreadable`: that check for many experiments: one by one up to :data:`ONE_BY_ONE`, else
  one paged ``search_experiments`` of the active experiments, then a probe of each one missing or
  renamed there (for its exact reason);
* :func:`server_answers`: the tracking server's ``GET /health`` (for an http(s) URI; else one
  ``search_experiments`` of one), used during an outage, whatever the poll backoff.

An unreachable server raises (an outage is the fleet's, never one watch's).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests
from mlflow import MlflowClient
from mlflow.entities import ViewType

from watcher.store.errors import is_unreachable
from watcher.store.paging import items

ONE_BY_ONE = 25
"""Up to this many experiments, each is probed with its own ``get_experiment``; more are listed."""
LIST_PAGE = 1000
HEALTH_TIMEOUT_SECONDS = 1.5


def _reason(exc: Exception) -> str:
    code = getattr(exc, "error_code", None)
    return f"{code or type(exc).__name__}: {exc}"


def probe_experiment(client: MlflowClient, name: str, experiment_id: str | None) -> str | None:
    """Why the experiment ``name`` (``experiment_id`` when known) cannot be read now, or None when it can."""
    try:
        experiment = (client.get_experiment(experiment_id) if experiment_id is not None
                      else client.get_experiment_by_name(name))
    except Exception as exc:
        if is_unreachable(exc):
            raise
        return _reason(exc)
    if experiment is None:
        return f"the experiment '{name}' does not exist"
    if experiment.lifecycle_stage != "active":
        return f"the experiment '{name}' (id {experiment.experiment_id}) is deleted"
    if experiment.name != name:
        return f"the experiment id {experiment.experiment_id} was renamed from '{name}' to '{experiment.name}'"
    return None


def unreadable(client: MlflowClient, experiments: Mapping[str, str]) -> dict[str, str]:
    """Experiment id -> why it cannot be read, for those of ``experiments`` (id -> the watched name)
    that cannot be read now."""
    todo = dict(experiments)
    if len(todo) > ONE_BY_ONE:
        listed = {str(e.experiment_id): e.name for e in items(client.search_experiments, view_type=ViewType.ACTIVE_ONLY,
                                                              max_results=LIST_PAGE)}
        todo = {exp_id: name for exp_id, name in todo.items() if listed.get(exp_id) != name}
    found = {exp_id: probe_experiment(client, name, exp_id) for exp_id, name in todo.items()}
    return {exp_id: reason for exp_id, reason in found.items() if reason is not None}


def health_url(client: MlflowClient) -> str | None:
    """``<tracking URI>/health`` for an http(s) server (its credentials left out), else None."""
    uri = str(getattr(client, "tracking_uri", "") or "")
    if not uri.startswith(("http://", "https://")):
        return None
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1].rstrip('/')}/health"


def server_answers(client: MlflowClient) -> bool:
    """Whether the tracking server answers now: ``GET <uri>/health`` is 200 (one small request)."""
    url = health_url(client)
    if url is not None:
        try:
            return requests.get(url, timeout=HEALTH_TIMEOUT_SECONDS).status_code == 200
        except requests.RequestException:
            return False
    try:
        client.search_experiments(max_results=1)
    except Exception:  # noqa: BLE001 - anything means not yet
        return False
    return True
