"""Production alias: observe changes into the audit trail, hand scoring on, promote, roll back.

Every move is one entry in the audit trail (``watcher.audit``); scoring is keyed on the entry's
stable ``id`` (see ``watcher.scoring_runner``), so every change is scored exactly once.

The hand-off between the CLI and the daemon: ``promote`` writes its entry as an *intent* before
it moves the alias and finishes it afterwards; ``watcher.protection`` (run by the daemon) takes
an intent for the alias's version as the tool's own move, never an ``external`` one, and applies
the alias's policy (record, alert, revert) to any other move.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from handlers.registration import decision_of
from watcher import audit, state
from watcher import history
from watcher.config import DEFAULT_AUDIT_EXPERIMENT, WatchConfig
from watcher.logs import get_logger
from watcher.report import WatchReport
from watcher.protection import INTENT_TTL_S, aliases_of as _aliases, reconcile_alias
from watcher.scoring_runner import due, maybe_score

__all__ = ["INTENT_TTL_S", "PromotionError", "cli_user", "decision_of", "production_history", "promote",
           "reconcile_production", "rollback"]

log = get_logger("watcher.production")


class PromotionError(Exception):
    """A promote or rollback that cannot be done; the message says why."""


def cli_user() -> str:
    """Who runs the CLI: $REGISTRY_WATCHER_USER, else the login name."""
    return os.environ.get("REGISTRY_WATCHER_USER") or getpass.getuser()


def reconcile_production(client: MlflowClient, watch: WatchConfig, model: RegisteredModel,
                         wr: WatchReport, now: float, audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT,
                         handoff: Callable[[str], None] | None = None) -> None:
    """Settle production (and staging, when protected) under their policies, then score the newest
    production move if it is not scored (see ``watcher.protection``).

    With ``handoff`` (the daemon's scoring worker) the model name is handed over instead of scoring
    inline; the worker re-reads the tags, so the once-per-change guarantee is the same.
    """
    tags = dict(model.tags or {})
    audit.migrate_legacy(client, audit_experiment, watch.model_name, tags, watch.production_alias)
    last, tags, current = reconcile_alias(client, watch, model, watch.production_alias, watch.production_policy,
                                          audit_experiment, now)
    if watch.staging_policy != "record":
        reconcile_alias(client, watch, model, watch.staging_alias, watch.staging_policy, audit_experiment, now)
    if current is None or last is None or watch.scoring is None:
        return
    if handoff is None:
        maybe_score(client, watch, tags, last, wr, now)
    elif due(tags, last, now):
        handoff(watch.model_name)
        wr.queued.append(str(last["version"]))


def _refusal(watch: WatchConfig, version: str, decision: str | None, reason: str) -> str:
    what = f"{watch.model_name} v{version}"
    if decision is None:
        why = (f"{what} has no watcher decision (its run was never gated by this watcher), so it is "
               "treated as rejected")
    else:
        why = f"{what} was {decision} by the gates: {reason or '(no reason recorded)'}"
    return f"refused to move '{watch.production_alias}': {why}. Override with --force --reason \"...\""


def promote(client: MlflowClient, watch: WatchConfig, version: str | None, reason: str, user: str,
            action: str = "promote", *, force: bool = False,
            audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT) -> dict[str, Any]:
    """Move the production alias to ``version`` (default: the staging version) and record it.

    Refuses a version that the gates rejected or that has no watcher decision, unless ``force``
    with a non-empty ``reason``: that move is recorded as ``forced`` and logged as a warning.
    """
    model = client.get_registered_model(watch.model_name)
    aliases = _aliases(model)
    if version is None:
        version = aliases.get(watch.staging_alias)
        if version is None:
            raise PromotionError(f"{watch.model_name} has no '{watch.staging_alias}' version to promote; pass --version")
    version = str(version)
    mv = client.get_model_version(watch.model_name, version)  # raises when it does not exist
    previous = aliases.get(watch.production_alias)
    if previous == version:
        raise PromotionError(f"{watch.model_name} v{version} is already '{watch.production_alias}'")
    decision, why = decision_of(client, mv)
    forced = decision != "registered"
    if forced and not force:
        raise PromotionError(_refusal(watch, version, decision, why))
    if forced and not reason.strip():
        raise PromotionError("--force needs a non-empty --reason: a forced move must say why")
    audit.migrate_legacy(client, audit_experiment, watch.model_name, dict(model.tags or {}), watch.production_alias)
    entry = audit.begin(client, audit_experiment, model_name=watch.model_name, alias=watch.production_alias,
                        version=version, previous=previous, by=user, action=action, reason=reason, forced=forced)
    client.set_registered_model_alias(watch.model_name, watch.production_alias, version)
    stamp = state.now_iso()
    for key, value in ((state.PROMOTED_AT, stamp), (state.PROMOTED_BY, user), (state.PROMOTION_REASON, reason),
                       (state.PROMOTION_ACTION, action), (state.PROMOTION_FORCED, str(forced).lower())):
        client.set_model_version_tag(watch.model_name, version, key, state.truncate(value, state.MODEL_TAG_LIMIT))
    entry = audit.finish(client, entry)
    event = "model_promoted" if action == "promote" else "model_rolled_back"
    log.info(event, model_name=watch.model_name, version=version, previous_version=previous, by=user, reason=reason,
             forced=forced)
    if forced:
        log.warning("promotion_forced", model_name=watch.model_name, version=version, previous_version=previous,
                    by=user, reason=reason, decision=decision or "none", decision_reason=why, action=action)
    return entry


def production_history(client: MlflowClient, watch: WatchConfig,
                       audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT) -> list[dict[str, Any]]:
    """Every recorded production move, oldest first (the legacy tag is carried over first)."""
    tags = dict(client.get_registered_model(watch.model_name).tags or {})
    audit.migrate_legacy(client, audit_experiment, watch.model_name, tags, watch.production_alias)
    return audit.entries(client, audit_experiment, watch.model_name, watch.production_alias)


def rollback(client: MlflowClient, watch: WatchConfig, to: str | None, reason: str, user: str, *,
             force: bool = False, audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT) -> dict[str, Any]:
    """Move production back to the previous production version in the history (or to ``to``)."""
    model = client.get_registered_model(watch.model_name)
    current = _aliases(model).get(watch.production_alias)
    target = to or history.previous_version(production_history(client, watch, audit_experiment), current)
    if target is None:
        raise PromotionError(f"{watch.model_name} has no previous production version in its history; "
                             "nothing to roll back to (use --to VERSION)")
    return promote(client, watch, str(target), reason, user, action="rollback", force=force,
                   audit_experiment=audit_experiment)
