"""Protected aliases: bring the audit trail in line with where an alias points, under its policy.

Open-source MLflow has no permissions on aliases, so anyone who can write to the registry can
point ``production`` anywhere. Each tick compares an alias with its newest recorded move; the
pure ``watcher.engine.policy.decide`` says what to do and :func:`execute` does it:

* ``record`` writes the history entry of an external move (production is then scored);
* ``alert`` also logs an ``error`` event naming the alias, old and new versions;
* ``revert`` puts the alias back where the watcher's last recorded move left it (removed, if it
  had none), records the attempt and the revert (``action: revert``), logs an error, and nothing
  is scored for the reverted version.

MLflow does not record who moves an alias, so ``moved_by`` in the events is always null; the
history says ``external``. Staging moves are only watched under ``alert``/``revert``; the first
time a staging alias is watched with no recorded move, its position is adopted as a baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import AliasPolicy, WatchConfig
from watcher.engine.history import last_done
from watcher.engine.policy import (
    EXTERNAL,
    WATCHER,
    Adopt,
    Finish,
    Plan,
    Record,
    Revert,
    Wait,
    decide,
    revert_target,
    settled,
)
from watcher.obs import metrics, process
from watcher.obs.logs import get_logger
from watcher.store import audit, registry
from watcher.store.audit import AliasMove, AuditEntry

if TYPE_CHECKING:
    from watcher.approvals.board import Board

log = get_logger("watcher.protection")


def reconcile_alias(client: MlflowClient, watch: WatchConfig, model: RegisteredModel, alias: str,
                    policy: AliasPolicy, experiment: str,
                    now: float, board: Board | None = None) -> tuple[AuditEntry | None, dict[str, str], str | None]:
    """Settle one alias; returns (the move that put it where it is, the model's tags, its version).

    The audit experiment's name is resolved to its id once for the whole step (``AuditTrail``). With
    ``board`` (a watch with ``approval``, its production alias), only moves that signed approval records
    back count as the watcher's own (``watcher.engine.approved.vet``)."""
    trail = audit.AuditTrail(experiment)
    tags, current = registry.tags_of(model), registry.aliases_of(model).get(alias)
    vetting = board if alias == watch.production_alias else None

    def whole() -> list[AuditEntry]:  # the trail, when vetting a revert in the window needs it
        return audit.entries(client, trail, watch.model_name, alias)

    recent = _vetted(vetting, watch, audit.recent(client, trail, watch.model_name, alias), whole)
    if settled(recent, current, policy):
        return last_done(recent), tags, current
    # the tick read the model earlier: a promote may have moved the alias since; read both again
    fresh = registry.get_model(client, watch.model_name)
    tags, current = registry.tags_of(fresh), registry.aliases_of(fresh).get(alias)
    recent = _vetted(vetting, watch, audit.recent(client, trail, watch.model_name, alias), whole)
    gone = frozenset(e.id for e in recent if e.status == "pending" and process.is_gone(e.writer))
    plan = decide(recent, current, policy, production=alias == watch.production_alias, now=now, gone=gone)
    last = execute(client, watch, trail, alias, policy, plan, current, vetting)
    return last, tags, (last.version if last is not None and last.action == "revert" else current)


def execute(client: MlflowClient, watch: WatchConfig, experiment: audit.AuditTrail | str, alias: str,
            policy: AliasPolicy, plan: Plan, current: str | None, board: Board | None = None) -> AuditEntry | None:
    """Carry out a plan; returns the newest recorded move afterwards."""
    for entry in plan.abandon:
        audit.abandon(client, entry)
        log.warning("promotion_intent_abandoned", alias=alias, version=entry.version, by=entry.by, entry_id=entry.id)
    last = plan.last
    for action in plan.actions:
        if isinstance(action, Finish):
            writer = action.intent.writer
            log.info("promotion_completed_by_watcher", alias=alias, version=current, by=action.intent.by,
                     entry_id=action.intent.id, reason=action.reason, writer_host=writer.host if writer else None,
                     writer_pid=writer.pid if writer else None)
            last = audit.finish_intent(client, action.intent)
        elif isinstance(action, Wait):
            log.debug("promotion_in_progress", alias=alias, version=current, by=action.intent.by,
                      entry_id=action.intent.id)
            last = action.intent  # the alias is where the intent put it: scoring goes on, keyed on its id
        elif isinstance(action, Adopt):
            log.info("alias_baseline_adopted", alias=alias, version=action.version)
            last = audit.record(client, experiment, AliasMove(
                watch.model_name, alias, action.version, None, WATCHER, "adopted",
                f"'{alias}' first watched here; its position taken as given"))
        elif isinstance(action, Record):
            removed = action.version is None
            last = audit.record(client, experiment, AliasMove(
                watch.model_name, alias, action.version, action.previous, EXTERNAL,
                "removed" if removed else "observed",
                f"'{alias}' {'removed' if removed else 'moved'} outside the watcher (policy {policy})"))
            _report(watch, alias, policy, action.version, action.previous)
        elif isinstance(action, Revert):
            attempt = action.attempt or last
            assert attempt is not None
            last = _revert(client, watch, experiment, alias, current, attempt, board)
    return last


def _report(watch: WatchConfig, alias: str, policy: AliasPolicy, current: str | None, previous: str | None) -> None:
    if policy in ("alert", "revert"):
        metrics.record_protected_alias(watch.model_name, "moved")
        log.error("protected_alias_moved", alias=alias, version=current, previous_version=previous, by=EXTERNAL,
                  moved_by=None, policy=policy)
    elif alias == watch.production_alias and current is None:
        log.warning("production_alias_removed", alias=alias, previous_version=previous)
    elif alias == watch.production_alias:
        log.info("production_alias_changed", version=current, previous_version=previous, by=EXTERNAL)


def _revert(client: MlflowClient, watch: WatchConfig, experiment: audit.AuditTrail | str, alias: str,
            current: str | None, attempt: AuditEntry, board: Board | None = None) -> AuditEntry:
    """Put the alias back where the watcher's last recorded move left it (an intent first, like promote)."""
    target = revert_target(_vetted(board, watch, audit.entries(client, experiment, watch.model_name, alias)))
    entry = audit.begin(client, experiment, AliasMove(
        watch.model_name, alias, target, current, WATCHER, "revert",
        f"'{alias}' is protected (policy revert): the external move to v{current or '-'} was undone"))
    if target is None:
        if current is not None:
            registry.delete_alias(client, watch.model_name, alias)
    else:
        registry.set_alias(client, watch.model_name, alias, target)
    entry = audit.finish_intent(client, entry)
    metrics.record_protected_alias(watch.model_name, "reverted")
    log.error("protected_alias_reverted", alias=alias, attempted_version=current, restored_version=target,
              moved_by=None, attempt_entry_id=attempt.id, entry_id=entry.id)
    return entry


def _vetted(board: Board | None, watch: WatchConfig, entries: list[AuditEntry],
            history: Callable[[], list[AuditEntry]] | None = None) -> list[AuditEntry]:
    """``entries`` as the policy may trust them: all without approvals, else those signed records back
    (``history``: the whole trail, when ``entries`` is a window of it)."""
    if board is None:
        return entries
    from watcher.engine.approved import vet

    return vet(board, watch, entries, history)


def begin_own_move(client: MlflowClient, experiment: str, watch: WatchConfig, alias: str, version: str,
                   previous: str | None, action: str, reason: str) -> AuditEntry:
    """The watcher's own alias move (staging): its intent, finished with ``audit.finish_intent`` afterwards."""
    return audit.begin(client, experiment, AliasMove(watch.model_name, alias, version, previous, WATCHER, action, reason))
