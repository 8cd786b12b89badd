"""Promote and rollback: the explicit, audited moves of the production alias.

The hand-off between the CLI and the daemon: ``promote`` writes its audit entry as an *intent*
before it moves the alias and finishes it afterwards; the daemon's alias step
(``watcher.engine.policy``) takes an intent for the alias's version as the tool's own move,
never an ``external`` one. A version the gates rejected, or never decided, is refused unless
``force`` with a reason; the move is then recorded as forced.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from mlflow import MlflowClient

from watcher.config import DEFAULT_AUDIT_EXPERIMENT, WatchConfig
from watcher.engine.history import previous_version
from watcher.obs.logs import get_logger
from watcher.store import audit, registry
from watcher.store.audit import AuditEntry
from watcher.store.migration import migrate_legacy

log = get_logger("watcher.production")


class PromotionError(Exception):
    """A promote or rollback that cannot be done; the message says why."""


def cli_user() -> str:
    """Who runs the CLI: $REGISTRY_WATCHER_USER, else the login name."""
    return os.environ.get("REGISTRY_WATCHER_USER") or getpass.getuser()


def _promotion_refusal(watch: WatchConfig, version: str, decision: str | None, reason: str) -> str:
    what = f"{watch.model_name} v{version}"
    if decision is None:
        why = (f"{what} has no watcher decision (its run was never gated by this watcher), so it is "
               "treated as rejected")
    else:
        why = f"{what} was {decision} by the gates: {reason or '(no reason recorded)'}"
    return f"refused to move '{watch.production_alias}': {why}. Override with --force --reason \"...\""


@dataclass(frozen=True)
class MoveSpec:
    """Who moves production, why and how: a promote or a rollback, forced or not, backed by an approval or not."""

    reason: str
    user: str
    action: str = "promote"
    force: bool = False
    approval: str | None = None


def promote(client: MlflowClient, watch: WatchConfig, version: str | None, reason: str, user: str, *,
            force: bool = False, audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT,
            approval: str | None = None) -> AuditEntry:
    """Move the production alias to ``version`` (default: the staging version) and record it.

    Refuses a version that the gates rejected or that has no watcher decision, unless ``force``
    with a non-empty ``reason``: that move is recorded as ``forced`` and logged as a warning.
    """
    return _move_production(client, watch, version, MoveSpec(reason, user, "promote", force, approval), audit_experiment)


def _move_production(client: MlflowClient, watch: WatchConfig, version: str | None, spec: MoveSpec,
          audit_experiment: str) -> AuditEntry:
    """:func:`promote` and :func:`rollback`: move production to ``version`` and record it."""
    reason, user, action, force, approval = spec.reason, spec.user, spec.action, spec.force, spec.approval
    if watch.approval is not None and approval is None:
        raise PromotionError(f"{watch.model_name} needs approvals: production moves only through the daemon's "
                             "approvals API (registry-watcher promote makes a request)")
    model = registry.get_model(client, watch.model_name)
    aliases = registry.aliases_of(model)
    if version is None:
        version = aliases.get(watch.staging_alias)
        if version is None:
            raise PromotionError(f"{watch.model_name} has no '{watch.staging_alias}' version to promote; pass --version")
    version = str(version)
    mv = registry.get_version(client, watch.model_name, version)  # raises when it does not exist
    previous = aliases.get(watch.production_alias)
    if previous == version:
        raise PromotionError(f"{watch.model_name} v{version} is already '{watch.production_alias}'")
    decision, why = registry.decision_of(client, mv)
    forced = decision != "registered"
    if forced and not force:
        raise PromotionError(_promotion_refusal(watch, version, decision, why))
    if forced and not reason.strip():
        raise PromotionError("--force needs a non-empty --reason: a forced move must say why")
    trail = audit.AuditTrail(audit_experiment)
    migrate_legacy(client, trail, watch.model_name, registry.tags_of(model), watch.production_alias)
    entry = audit.begin(client, trail, audit.AliasMove(watch.model_name, watch.production_alias, version,
                                                                  previous, user, action, reason, forced,
                                                                  approval=approval))
    registry.set_alias(client, watch.model_name, watch.production_alias, version)
    registry.set_promotion_tags(client, watch.model_name, version, user=user, reason=reason, action=action,
                                forced=forced)
    entry = audit.finish_intent(client, entry)
    event = "model_promoted" if action == "promote" else "model_rolled_back"
    log.info(event, model_name=watch.model_name, version=version, previous_version=previous, by=user, reason=reason,
             forced=forced)
    if forced:
        log.warning("promotion_forced", model_name=watch.model_name, version=version, previous_version=previous,
                    by=user, reason=reason, decision=decision or "none", decision_reason=why, action=action)
    return entry


def production_history(client: MlflowClient, watch: WatchConfig,
                       audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT) -> list[AuditEntry]:
    """Every recorded production move, oldest first (the legacy tag is carried over first)."""
    tags = registry.tags_of(registry.get_model(client, watch.model_name))
    trail = audit.AuditTrail(audit_experiment)
    migrate_legacy(client, trail, watch.model_name, tags, watch.production_alias)
    return audit.entries(client, trail, watch.model_name, watch.production_alias)


def rollback(client: MlflowClient, watch: WatchConfig, to: str | None, reason: str, user: str, *,
             force: bool = False, audit_experiment: str = DEFAULT_AUDIT_EXPERIMENT,
             approval: str | None = None) -> AuditEntry:
    """Move production back to the previous production version in the history (or to ``to``)."""
    model = registry.get_model(client, watch.model_name)
    current = registry.aliases_of(model).get(watch.production_alias)
    target = to or previous_version(production_history(client, watch, audit_experiment), current)
    if target is None:
        raise PromotionError(f"{watch.model_name} has no previous production version in its history; "
                             "nothing to roll back to (use --to VERSION)")
    return _move_production(client, watch, str(target), MoveSpec(reason, user, "rollback", force, approval), audit_experiment)
