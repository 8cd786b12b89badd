"""Registration and tagging: the only registry writes the candidate path makes.

Each step checks before it acts, so a crash between two steps is repaired by the next tick and
never duplicated:

1. ``find_or_create_version``: a version whose run_id is this run is reused (one version per run,
   ever); otherwise one is created *with* its tags in a single request.
2. ``ensure_version_tags``: sets whatever tag is missing or different (repairs a bare version).
3. ``move_staging``: moves the staging alias only forward in run end time.
4. ``record_decision``: writes the run's decision tags in one ``log_batch`` (the commit marker).

``crash`` is called at the named points ``after_create``, ``after_tag``, ``after_alias`` and
``after_decision`` so tests can interrupt there and rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.entities import Run, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from handlers.base import GateResult, ModelRef
from watcher import state
from watcher.config import MetricGate, ChampionGate, WatchConfig
from watcher.errors import is_unreachable

CrashHook = Callable[[str], None]


def no_crash(point: str) -> None:
    """Default crash hook: does nothing."""


def resolve_model(client: MlflowClient, run: Run, artifact_path: str) -> ModelRef | None:
    """Find the run's model under ``artifact_path``: a LoggedModel output, else a run artifact."""
    outputs = run.outputs.model_outputs if run.outputs else []
    for output in sorted(outputs, key=lambda o: o.step, reverse=True):
        logged = client.get_logged_model(output.model_id)
        if logged.name == artifact_path:
            return ModelRef(f"models:/{logged.model_id}", logged.model_id,
                            *_mlmodel(f"{logged.artifact_location.rstrip('/')}/MLmodel"))
    names = {a.path for a in client.list_artifacts(run.info.run_id, artifact_path)}
    if f"{artifact_path}/MLmodel" in names:
        return ModelRef(f"{run.info.artifact_uri}/{artifact_path}", None,
                        *_mlmodel(f"{run.info.artifact_uri}/{artifact_path}/MLmodel"))
    return None


def _mlmodel(mlmodel_uri: str) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(signature, None, flavors) from the model's MLmodel file, in one download; (None, why, None)
    when the file is not a readable model description; (None, None, None) when it is missing.

    The file is read at the model's artifact location rather than through ``get_model_info``,
    which resolves a ``models:/`` URI twice more. An unreachable server is raised (an outage is
    nobody's verdict on the run)."""
    try:
        model = Model.load(mlmodel_uri)
    except MlflowException as exc:
        if is_unreachable(exc):
            raise
        return None, None, None
    except (yaml.YAMLError, AttributeError, TypeError, ValueError, KeyError) as exc:
        return None, state.truncate(f"{type(exc).__name__}: {exc}".replace("\n", " "), 500), None
    return model.signature, None, dict(model.flavors or {})


def version_tags(watch: WatchConfig, run: Run, experiment_name: str, results: Sequence[GateResult]) -> dict[str, str]:
    """Governance tags verbatim, the gate verdicts, and lineage."""
    used = {g.metric if isinstance(g, MetricGate) else g.champion
            for g in watch.gates if isinstance(g, (MetricGate, ChampionGate))}
    metrics = {k: v for k, v in run.data.metrics.items() if k in used}
    return {
        **watch.tags,
        state.DECISION: "registered",
        state.REASON: f"passed all {len(results)} gates",
        state.GATES: state.truncate(json.dumps([r.as_json() for r in results], default=str), state.RUN_TAG_LIMIT),
        state.SOURCE_RUN_ID: run.info.run_id,
        state.RUN_NAME: run.info.run_name or "",
        state.RUN_END_TIME: str(run.info.end_time),
        state.EXPERIMENT: experiment_name,
        state.EXPERIMENT_ID: run.info.experiment_id,
        state.METRICS: json.dumps(metrics, default=str),
    }


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
        held = found.get(version.run_id)
        if held is None or int(version.version) < int(held.version):
            found[version.run_id] = version
    return found


def find_or_create_version(client: MlflowClient, model_name: str, run: Run, model: ModelRef,
                           tags: dict[str, str], crash: CrashHook = no_crash,
                           known: dict[str, ModelVersion | None] | None = None) -> tuple[ModelVersion, bool]:
    """Reuse the run's version or create one with ``tags``; returns (version, created)."""
    existing = find_version(client, model_name, run.info.run_id, known)
    if existing is not None:
        return existing, False
    created = client.create_model_version(
        name=model_name, source=model.source, run_id=run.info.run_id,
        tags={**tags, state.REGISTERED_AT: state.now_iso()}, model_id=model.model_id,
        description=f"Registered by registry-watcher from run {run.info.run_id}",
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
    if state.REGISTERED_AT not in version.tags:
        client.set_model_version_tag(version.name, version.version, state.REGISTERED_AT, state.now_iso())
    crash("after_tag")
    return written


def move_staging(client: MlflowClient, model_name: str, alias: str, version: ModelVersion,
                 end_time: int, aliases: dict[str, Any], end_times: dict[str, int],
                 crash: CrashHook = no_crash,
                 on_move: Callable[[str | None, str], Callable[[], Any]] | None = None) -> str | None:
    """Point ``alias`` at ``version`` unless it already holds a run that ended later.

    ``end_times`` caches version -> run end time for this tick, so a backlog costs no extra
    request per run. ``on_move(previous, new)`` is called just before the move (the engine writes
    its audit intent there) and what it returns just after. Returns the previous version when the
    alias moved (``""`` when unset).
    """
    current = aliases.get(alias)
    if current is not None and str(current) == str(version.version):
        return None
    if current is not None:
        if str(current) not in end_times:
            try:
                held = client.get_model_version(model_name, str(current))
                end_times[str(current)] = int(held.tags.get(state.RUN_END_TIME) or 0)
            except MlflowException:
                end_times[str(current)] = 0
        if end_times[str(current)] > end_time:
            return None
    finish = on_move(None if current is None else str(current), str(version.version)) if on_move else None
    client.set_registered_model_alias(model_name, alias, str(version.version))
    aliases[alias] = str(version.version)
    end_times[str(version.version)] = end_time
    crash("after_alias")
    if finish is not None:
        finish()
    return "" if current is None else str(current)


def tag_rejected_version(client: MlflowClient, model_name: str, run: Run, results: Sequence[GateResult],
                         reason: str, crash: CrashHook = no_crash,
                         known: dict[str, ModelVersion | None] | None = None) -> str | None:
    """A rejected run whose version already exists (registered by the training job or by hand):
    record the rejection on that version too, so ``promote`` refuses it. Returns its number.

    It never gets governance tags or the staging alias.
    """
    existing = find_version(client, model_name, run.info.run_id, known)
    if existing is None:
        return None
    tags = {state.DECISION: "rejected", state.REASON: state.truncate(reason, state.MODEL_TAG_LIMIT),
            state.GATES: state.truncate(json.dumps([r.as_json() for r in results], default=str), state.MODEL_TAG_LIMIT),
            state.SOURCE_RUN_ID: run.info.run_id, state.DECIDED_AT: state.now_iso()}
    for key, value in tags.items():
        if key == state.DECIDED_AT and state.DECIDED_AT in existing.tags:
            continue
        if existing.tags.get(key) != value:
            client.set_model_version_tag(model_name, existing.version, key, value)
    crash("after_tag")
    return str(existing.version)


def record_decision(client: MlflowClient, run_id: str, decision: str, results: Sequence[GateResult],
                    reason: str = "", version: str | None = None, crash: CrashHook = no_crash,
                    model_name: str | None = None) -> None:
    """Write the run's decision tags in one request; the decision tag marks the run as done."""
    tags = {
        state.DECISION: decision,
        state.GATES: state.truncate(json.dumps([r.as_json() for r in results], default=str), state.RUN_TAG_LIMIT),
        state.DECIDED_AT: state.now_iso(),
    }
    if reason:
        tags[state.REASON] = state.truncate(reason, state.RUN_TAG_LIMIT)
    if version is not None:
        tags[state.MODEL_VERSION] = str(version)
    if model_name is not None:
        tags[state.WATCH_MODEL] = model_name
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    crash("after_decision")


def decision_of(client: MlflowClient, mv: ModelVersion) -> tuple[str | None, str]:
    """The watcher's decision on a version: its ``watcher.decision`` tag, else its run's decision."""
    tags = mv.tags or {}
    if tags.get(state.DECISION):
        return tags[state.DECISION], tags.get(state.REASON, "")
    if mv.run_id:
        try:
            run_tags = client.get_run(mv.run_id).data.tags
        except MlflowException:  # a deleted run: no decision
            return None, ""
        if run_tags.get(state.DECISION):
            return run_tags[state.DECISION], run_tags.get(state.REASON, "")
    return None, ""
