"""Approval records (issue 27) as MLflow tags: raw reads and append-only writes, nothing more.

Each request, vote and outcome is one tag on the registered model version it concerns
(``watcher.approval.<request id>.<kind>[.<voter hash>]``, :func:`watcher.store.keys.approval_key`),
so two replicas taking votes at once write different keys and never overwrite each other. The
values are signed JSON made and checked by ``watcher.approvals`` (this module never interprets
them); :func:`model_records` reads every record of a model in one paged ``search_model_versions``.
The version's human-readable tags (``watcher.approval_state``, ``watcher.approved_by``) are for the
MLflow UI only.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from watcher.store import keys
from watcher.store.paging import items
from watcher.store.registry import RESOURCE_DOES_NOT_EXIST, find_model

PAGE = 200


@dataclass(frozen=True)
class RawRecord:
    """One approval tag as stored: where it is, its key and its (unverified) value."""

    model: str
    version: str
    key: str
    value: str


@dataclass(frozen=True)
class VersionFacts:
    """What the approval rules read about one version: it exists, its run, its decision tag."""

    version: str
    run_id: str | None
    tags: dict[str, str]


def _versions_filter(model: str) -> str:
    return "name = '{}'".format(model.replace("'", "\\'"))


def model_records(client: MlflowClient, model: str) -> list[RawRecord]:
    """Every approval tag on every version of ``model`` (one paged request; none when it does not exist)."""
    found: list[RawRecord] = []
    for mv in items(client.search_model_versions, _versions_filter(model), max_results=PAGE):
        for key, value in (mv.tags or {}).items():
            if key.startswith(keys.APPROVAL_PREFIX):
                found.append(RawRecord(model, str(mv.version), key, value))
    return found


def version_facts(client: MlflowClient, model: str, version: str) -> VersionFacts | None:
    """The version's run and tags, or None when it does not exist."""
    try:
        mv = client.get_model_version(model, version)
    except MlflowException as exc:
        if exc.error_code in (RESOURCE_DOES_NOT_EXIST, "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return VersionFacts(str(mv.version), mv.run_id or None, dict(mv.tags or {}))


def run_author(client: MlflowClient, run_id: str | None) -> str | None:
    """The run's ``mlflow.user`` tag (what its client claimed), or None without a run."""
    if not run_id:
        return None
    try:
        return client.get_run(run_id).data.tags.get("mlflow.user") or None
    except MlflowException:
        return None


def append_record(client: MlflowClient, model: str, version: str, key: str, value: str) -> bool:
    """Write one record unless its key already exists (append-only); False when it did."""
    facts = version_facts(client, model, version)
    if facts is None:
        raise LookupError(f"{model} v{version} does not exist")
    if key in facts.tags:
        return False
    client.set_model_version_tag(model, version, key, value[: keys.MODEL_TAG_LIMIT])
    return True


def show_state(client: MlflowClient, model: str, version: str, state: str, approved_by: list[str]) -> None:
    """The human-readable tags of the version (the MLflow UI only; never read back as truth)."""
    try:
        client.set_model_version_tag(model, version, keys.APPROVAL_UI_STATE, state)
        client.set_model_version_tag(model, version, keys.APPROVAL_UI_BY, ",".join(approved_by)[: keys.MODEL_TAG_LIMIT])
    except MlflowException:
        pass  # the version was deleted meanwhile: nothing to show it on


def baseline(client: MlflowClient, model: str) -> str | None:
    """The model's approval baseline record (signed JSON), or None."""
    found = find_model(client, model)
    return None if found is None else (found.tags or {}).get(keys.APPROVAL_BASELINE)


def set_baseline(client: MlflowClient, model: str, value: str) -> None:
    """Write the model's approval baseline record."""
    client.set_registered_model_tag(model, keys.APPROVAL_BASELINE, value)
