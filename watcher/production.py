"""Production alias: observe changes into the history, hand scoring on, promote, roll back.

A promotion, a rollback or an observed external move each append one history entry with a
``seq``; scoring is keyed on that ``seq`` (see ``watcher.scoring_runner``), so every change is
scored exactly once.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher import history, state
from watcher.config import WatchConfig
from watcher.logs import get_logger
from watcher.report import WatchReport
from watcher.scoring_runner import due, maybe_score

log = get_logger("watcher.production")


class PromotionError(Exception):
    """A promote or rollback that cannot be done; the message says why."""


def cli_user() -> str:
    """Who runs the CLI: $REGISTRY_WATCHER_USER, else the login name."""
    return os.environ.get("REGISTRY_WATCHER_USER") or getpass.getuser()


def reconcile_production(client: MlflowClient, watch: WatchConfig, model: RegisteredModel,
                         wr: WatchReport, now: float, handoff: Callable[[str], None] | None = None) -> None:
    """Record an observed production change, then score the newest change if it is not scored.

    With ``handoff`` (the daemon's scoring worker) the model name is handed over instead of scoring
    inline; the worker re-reads the tags, so the once-per-change guarantee is the same.
    """
    tags = dict(model.tags or {})
    aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
    current = aliases.get(watch.production_alias)
    entries = history.read(tags)
    last = entries[-1] if entries else None
    if current is None:
        if last is not None and last.get("version") is not None:
            log.warning("production_alias_removed", alias=watch.production_alias, previous_version=last["version"])
            history.append(client, watch.model_name, tags, version=None, previous=last["version"],
                           by="external", action="removed", reason="production alias removed outside the watcher")
        return
    if last is None or last.get("version") != current:
        last = history.append(client, watch.model_name, tags, version=current,
                              previous=last.get("version") if last else None, by="external",
                              action="observed", reason="production alias moved outside the watcher")
        log.info("production_alias_changed", version=current, previous_version=last["previous"], by="external")
    if watch.scoring is not None:
        if handoff is None:
            maybe_score(client, watch, tags, last, wr, now)
        elif due(tags, last, now):
            handoff(watch.model_name)


def promote(client: MlflowClient, watch: WatchConfig, version: str | None, reason: str, user: str,
            action: str = "promote") -> dict[str, Any]:
    """Move the production alias to ``version`` (default: the staging version) and record it."""
    model = client.get_registered_model(watch.model_name)
    aliases = {k: str(v) for k, v in (model.aliases or {}).items()}
    if version is None:
        version = aliases.get(watch.staging_alias)
        if version is None:
            raise PromotionError(f"{watch.model_name} has no '{watch.staging_alias}' version to promote; pass --version")
    client.get_model_version(watch.model_name, str(version))  # raises when it does not exist
    previous = aliases.get(watch.production_alias)
    if previous == str(version):
        raise PromotionError(f"{watch.model_name} v{version} is already '{watch.production_alias}'")
    client.set_registered_model_alias(watch.model_name, watch.production_alias, str(version))
    stamp = state.now_iso()
    for key, value in ((state.PROMOTED_AT, stamp), (state.PROMOTED_BY, user),
                       (state.PROMOTION_REASON, reason), (state.PROMOTION_ACTION, action)):
        client.set_model_version_tag(watch.model_name, str(version), key, value)
    entry = history.append(client, watch.model_name, dict(model.tags or {}), version=str(version),
                           previous=previous, by=user, action=action, reason=reason, amend_external_within_s=120)
    event = "model_promoted" if action == "promote" else "model_rolled_back"
    log.info(event, model_name=watch.model_name, version=str(version), previous_version=previous, by=user, reason=reason)
    return entry


def rollback(client: MlflowClient, watch: WatchConfig, to: str | None, reason: str, user: str) -> dict[str, Any]:
    """Move production back to the previous production version in the history (or to ``to``)."""
    model = client.get_registered_model(watch.model_name)
    current = {k: str(v) for k, v in (model.aliases or {}).items()}.get(watch.production_alias)
    target = to or history.previous_version(history.read(dict(model.tags or {})), current)
    if target is None:
        raise PromotionError(f"{watch.model_name} has no previous production version in its history; "
                             "nothing to roll back to (use --to VERSION)")
    return promote(client, watch, str(target), reason, user, action="rollback")
