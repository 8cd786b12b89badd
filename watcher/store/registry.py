"""The model registry: registered models, versions, their tags and aliases.

Each write checks before it acts, so a crash between two steps is repaired by the next tick and
never duplicated:

1. :func:`find_or_create_version`: a version whose run_id is this run is reused (one version per
   run, ever); otherwise one is created *with* its tags in a single request;
2. :func:`ensure_version_tags`: sets whatever tag is missing or different (repairs a bare version);
3. :func:`forward_move` then :func:`set_alias`: the staging alias moves only forward in run end time
   (the engine writes its audit intent between the two; the store never calls back up).

``crash`` is called at the named points ``after_create`` and ``after_tag`` (and by the engine at
``after_alias``, right after :func:`set_alias`) so tests can interrupt there and rerun.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from watcher.obs.logs import get_logger
from watcher.store import keys
from watcher.store.codec import now_iso, truncate

CrashHook = Callable[[str], None]
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
log = get_logger("watcher.engine")  # its one event, registered_model_created, is the engine's as it always was


def no_crash(point: str) -> None:
    """Default crash hook: does nothing."""


def aliases_of(model: RegisteredModel) -> dict[str, str]:
    """The model's aliases as ``{alias: version string}``."""
    return {str(k): str(v) for k, v in (model.aliases or {}).items()}


def tags_of(model: RegisteredModel) -> dict[str, str]:
    """The model's tags as a plain dict (a copy)."""
    return dict(model.tags or {})


def get_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model (raises when it does not exist)."""
    return client.get_registered_model(name)


def find_model(client: MlflowClient, name: str) -> RegisteredModel | None:
    """The registered model, or None when it does not exist."""
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != RESOURCE_DOES_NOT_EXIST:
            raise
        return None


def ensure_registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """Get the registered model, creating it when missing; a prompt of that name is an error."""
    model = find_model(client, name)
    if model is not None:
        if tags_of(model).get(keys.PROMPT, "").lower() == "true":
            raise ValueError(f"'{name}' is an MLflow prompt, not a model; the watcher will not write to it")
        return model
    try:
        client.create_registered_model(name, description="Managed by registry-watcher")
        log.info("registered_model_created")
    except MlflowException as exc:
        if "ALREADY_EXISTS" not in str(exc.error_code):
            raise
    return client.get_registered_model(name)


def get_version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    """One version (raises when it does not exist)."""
    return client.get_model_version(model_name, str(version))


def run_end_time(client: MlflowClient, model_name: str, version: str) -> int:
    """The end time (epoch ms) of the run a version was made from, from its lineage tag; 0 if unknown."""
    try:
        return int(get_version(client, model_name, version).tags.get(keys.RUN_END_TIME) or 0)
    except MlflowException:
        return 0


def find_version(client: MlflowClient, model_name: str, run_id: str,
                 known: dict[str, ModelVersion | None] | None = None) -> ModelVersion | None:
    """The (lowest) existing version of ``model_name`` made from ``run_id``, if any.

    ``known`` is the answer of :func:`versions_by_run` for a whole page (one request instead of
    one per run); a run it does not cover is looked up on its own."""
    if known is not None and run_id in known:
        return known[run_id]
    found = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def versions_by_run(client: MlflowClient, model_name: str, run_ids: Sequence[str]) -> dict[str, ModelVersion | None]:
    """Run id -> its (lowest) version of ``model_name`` or None, for many runs in one request."""
    if not run_ids:
        return {}
    listed = ", ".join(f"'{r}'" for r in run_ids)
    found: dict[str, ModelVersion | None] = dict.fromkeys(run_ids)
    for version in client.search_model_versions(f"name='{model_name}' AND run_id IN ({listed})"):
        if version.run_id is None:
            continue
        held = found.get(version.run_id)
        if held is None or int(version.version) < int(held.version):
            found[version.run_id] = version
    return found


def find_or_create_version(client: MlflowClient, model_name: str, run_id: str, source: str, model_id: str | None,
                           tags: dict[str, str], crash: CrashHook = no_crash,
                           known: dict[str, ModelVersion | None] | None = None) -> tuple[ModelVersion, bool]:
    """Reuse the run's version or create one with ``tags``; returns (version, created)."""
    existing = find_version(client, model_name, run_id, known)
    if existing is not None:
        return existing, False
    created = client.create_model_version(
        name=model_name, source=source, run_id=run_id, tags={**tags, keys.REGISTERED_AT: now_iso()},
        model_id=model_id, description=f"Registered by registry-watcher from run {run_id}",
    )
    crash("after_create")
    return created, True


def ensure_version_tags(client: MlflowClient, version: ModelVersion, tags: dict[str, str],
                        crash: CrashHook = no_crash) -> list[str]:
    """Set the tags that are missing or differ; returns the keys written (empty when complete)."""
    written = []
    for key, value in tags.items():
        if version.tags.get(key) != value:
            client.set_model_version_tag(version.name, version.version, key, value)
            written.append(key)
    if keys.REGISTERED_AT not in version.tags:
        client.set_model_version_tag(version.name, version.version, keys.REGISTERED_AT, now_iso())
    crash("after_tag")
    return written


@dataclass(frozen=True)
class ForwardMove:
    """The watcher's move of ``alias`` onto ``version``; ``previous`` is None when the alias was unset."""

    alias: str
    version: str
    previous: str | None


def forward_move(alias: str, version: str, end_time: int, current: str | None,
                 current_end_time: int | None) -> ForwardMove | None:
    """The move of ``alias`` onto ``version`` (its run ended at ``end_time``, epoch ms), or None when
    the alias already holds it or a version whose run ended later (``current_end_time``, read with
    :func:`run_end_time` by the caller, who remembers it). Nothing is written: :func:`set_alias` does."""
    if current is not None and str(current) == str(version):
        return None
    if current is not None and (current_end_time or 0) > end_time:
        return None
    return ForwardMove(alias, str(version), None if current is None else str(current))


def set_alias(client: MlflowClient, model_name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``."""
    client.set_registered_model_alias(model_name, alias, str(version))


def delete_alias(client: MlflowClient, model_name: str, alias: str) -> None:
    """Remove ``alias`` from the model."""
    client.delete_registered_model_alias(model_name, alias)


def tag_rejected_version(client: MlflowClient, model_name: str, run_id: str, reason: str, gates_json: str,
                         crash: CrashHook = no_crash,
                         known: dict[str, ModelVersion | None] | None = None) -> str | None:
    """A rejected run whose version already exists (registered by the training job or by hand):
    record the rejection on that version too, so ``promote`` refuses it. Returns its number.

    It never gets governance tags or the staging alias.
    """
    existing = find_version(client, model_name, run_id, known)
    if existing is None:
        return None
    tags = {keys.DECISION: "rejected", keys.REASON: truncate(reason, keys.MODEL_TAG_LIMIT),
            keys.GATES: truncate(gates_json, keys.MODEL_TAG_LIMIT),
            keys.SOURCE_RUN_ID: run_id, keys.DECIDED_AT: now_iso()}
    for key, value in tags.items():
        if key == keys.DECIDED_AT and keys.DECIDED_AT in existing.tags:
            continue
        if existing.tags.get(key) != value:
            client.set_model_version_tag(model_name, existing.version, key, value)
    crash("after_tag")
    return str(existing.version)


def set_promotion_tags(client: MlflowClient, model_name: str, version: str, *, user: str, reason: str,
                       action: str, forced: bool) -> None:
    """The promotion record on the version moved to (who, when, why, how, forced).

    MLflow has no batch write for version tags: the five independent requests go out at once
    (one round trip instead of five on the CLI's ``promote``); any failure is raised."""
    tags = ((keys.PROMOTED_AT, now_iso()), (keys.PROMOTED_BY, user), (keys.PROMOTION_REASON, reason),
            (keys.PROMOTION_ACTION, action), (keys.PROMOTION_FORCED, str(forced).lower()))
    with ThreadPoolExecutor(max_workers=len(tags), thread_name_prefix="promotion-tags") as pool:
        writes = [pool.submit(client.set_model_version_tag, model_name, version, key,
                              truncate(value, keys.MODEL_TAG_LIMIT)) for key, value in tags]
    for write in writes:
        write.result()


def decision_of(client: MlflowClient, mv: ModelVersion) -> tuple[str | None, str]:
    """The watcher's decision on a version: its ``watcher.decision`` tag, else its run's decision."""
    tags = mv.tags or {}
    if tags.get(keys.DECISION):
        return tags[keys.DECISION], tags.get(keys.REASON, "")
    if mv.run_id:
        try:
            run_tags = client.get_run(mv.run_id).data.tags
        except MlflowException:  # a deleted run: no decision
            return None, ""
        if run_tags.get(keys.DECISION):
            return run_tags[keys.DECISION], run_tags.get(keys.REASON, "")
    return None, ""
