"""Protected aliases: bring the audit trail in line with where an alias points, under its policy.

Open-source MLflow has no permissions on aliases, so anyone who can write to the registry can
point ``production`` anywhere. Each tick compares an alias with the newest recorded move:

* a fresh *intent* for the alias's version (``promote``/``rollback``, the watcher's own staging
  move or revert) is the tool's own move: it is finished, never taken for an external one;
* otherwise the move is external (``by: external``) and the alias's policy applies:
  ``record`` writes the history entry (production is then scored), ``alert`` also logs an
  ``error`` event naming the alias, old and new versions, and ``revert`` puts the alias back where
  the watcher's last recorded move left it (removed, if it had none), records the attempt and the
  revert (``action: revert``), logs an error, and nothing is scored for the reverted version.

MLflow does not record who moves an alias, so ``moved_by`` in the events is always null; the
history says ``external``. Staging moves are only watched under ``alert``/``revert``; the first
time a staging alias is watched with no recorded move, its position is adopted as a baseline.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher import audit
from watcher.config import WatchConfig
from watcher.logs import get_logger

log = get_logger("watcher.protection")
INTENT_TTL_S = 300.0
"""Seconds an intent may wait for its alias move before it counts as abandoned (a CLI that died)."""
WATCHER = "watcher"


def aliases_of(model: RegisteredModel) -> dict[str, str]:
    """The model's aliases as ``{alias: version string}``."""
    return {k: str(v) for k, v in (model.aliases or {}).items()}


def reconcile_alias(client: MlflowClient, watch: WatchConfig, model: RegisteredModel, alias: str, policy: str,
                    experiment: str, now: float) -> tuple[dict[str, Any] | None, dict[str, str], str | None]:
    """Settle one alias; returns (the move that put it where it is, the model's tags, its version)."""
    tags, current = dict(model.tags or {}), aliases_of(model).get(alias)
    recent = audit.recent(client, experiment, watch.model_name, alias)
    done = [e for e in recent if e["status"] == "done"]
    last = done[-1] if done else None
    if (last["version"] if last else None) == current and not any(e["status"] == "pending" for e in recent) \
            and not (policy == "revert" and last is not None and last["by"] == "external"):
        return last, tags, current
    # the tick read the model earlier: a promote may have moved the alias since; read both again
    fresh = client.get_registered_model(watch.model_name)
    tags, current = dict(fresh.tags or {}), aliases_of(fresh).get(alias)
    recent = audit.recent(client, experiment, watch.model_name, alias)
    last = _settle(client, watch, experiment, alias, policy, recent, current, now)
    return last, tags, (last["version"] if last and last.get("action") == "revert" else current)


def _settle(client: MlflowClient, watch: WatchConfig, experiment: str, alias: str, policy: str,
            recent: list[dict[str, Any]], current: str | None, now: float) -> dict[str, Any] | None:
    done = [e for e in recent if e["status"] == "done"]
    last = done[-1] if done else None
    last_version = last["version"] if last else None
    intent = None
    for entry in (e for e in recent if e["status"] == "pending"):
        if entry["version"] == current and current != last_version:
            intent = entry
        elif now - entry["start_ms"] / 1000 > INTENT_TTL_S:
            audit.abandon(client, entry)
            log.warning("promotion_intent_abandoned", alias=alias, version=entry["version"], by=entry["by"],
                        entry_id=entry["id"])
    if intent is not None:
        log.info("promotion_completed_by_watcher", alias=alias, version=current, by=intent["by"], entry_id=intent["id"])
        return audit.finish(client, intent)
    fields = dict(model_name=watch.model_name, alias=alias)
    if last is None and current is not None and alias != watch.production_alias:
        log.info("alias_baseline_adopted", alias=alias, version=current)
        return audit.record(client, experiment, **fields, version=current, previous=None, by=WATCHER,
                            action="adopted", reason=f"'{alias}' first watched here; its position taken as given")
    if last_version != current:
        action = "removed" if current is None else "observed"
        last = audit.record(client, experiment, **fields, version=current, previous=last_version, by="external",
                            action=action, reason=f"'{alias}' {'removed' if current is None else 'moved'} "
                                              f"outside the watcher (policy {policy})")
        _report(watch, alias, policy, current, last_version)
    elif policy != "revert" or last is None or last["by"] != "external":
        return last
    if policy != "revert":
        return last
    return _revert(client, watch, experiment, alias, current, last)


def _report(watch: WatchConfig, alias: str, policy: str, current: str | None, previous: str | None) -> None:
    if policy in ("alert", "revert"):
        log.error("protected_alias_moved", alias=alias, version=current, previous_version=previous, by="external",
                  moved_by=None, policy=policy)
    elif alias == watch.production_alias and current is None:
        log.warning("production_alias_removed", alias=alias, previous_version=previous)
    elif alias == watch.production_alias:
        log.info("production_alias_changed", version=current, previous_version=previous, by="external")


def _revert(client: MlflowClient, watch: WatchConfig, experiment: str, alias: str, current: str | None,
            attempt: dict[str, Any]) -> dict[str, Any] | None:
    """Put the alias back where the watcher's last recorded move left it (an intent first, like promote)."""
    everything = audit.entries(client, experiment, watch.model_name, alias)
    own = [e for e in everything if e["by"] != "external"]
    target = own[-1]["version"] if own else None
    entry = audit.begin(client, experiment, model_name=watch.model_name, alias=alias, version=target,
                        previous=current, by=WATCHER, action="revert",
                        reason=f"'{alias}' is protected (policy revert): the external move to "
                               f"v{current or '-'} was undone")
    if target is None:
        if current is not None:
            client.delete_registered_model_alias(watch.model_name, alias)
    else:
        client.set_registered_model_alias(watch.model_name, alias, target)
    entry = audit.finish(client, entry)
    log.error("protected_alias_reverted", alias=alias, attempted_version=current, restored_version=target,
              moved_by=None, attempt_entry_id=attempt["id"], entry_id=entry["id"])
    return entry


def begin_own_move(client: MlflowClient, experiment: str, watch: WatchConfig, alias: str, version: str,
                   previous: str | None, action: str, reason: str) -> dict[str, Any]:
    """The watcher's own alias move (staging): its intent, finished with ``audit.finish`` afterwards."""
    return audit.begin(client, experiment, model_name=watch.model_name, alias=alias, version=version,
                       previous=previous, by=WATCHER, action=action, reason=reason)
