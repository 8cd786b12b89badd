"""The production step of a tick: settle the protected aliases, then hand scoring on.

Every move is one entry in the audit trail (``watcher.store.audit``); scoring is keyed on the
entry's stable ``id`` (``watcher.scoring.runner``), so every change is scored exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from watcher.config import AliasPolicy, WatchConfig
from watcher.engine.aliases import reconcile_alias
from watcher.engine.history import last_done
from watcher.engine.policy import settled
from watcher.engine.report import WatchReport
from watcher.engine.snapshot import AuditCache
from watcher.scoring.runner import ProductionMove, due, maybe_score
from watcher.store import registry
from watcher.store.audit import AuditEntry

if TYPE_CHECKING:
    from watcher.approvals.board import Board

Handoff = Callable[[ProductionMove], None]
"""The daemon's scoring worker as the tick sees it (``ScoringWorker.submit``)."""


def polices_staging(watch: WatchConfig) -> bool:
    """Whether the staging alias is protected: its policy is not ``record``."""
    return watch.staging_policy != "record"


@dataclass(frozen=True)
class ProductionAids:
    """What the daemon lends :func:`reconcile_production`: its scoring hand-off, its audit cache, the model's
    approval board (a watch with ``approval``). The CLI and ``once`` lend none."""

    handoff: Handoff | None = None
    cache: AuditCache | None = None
    board: Board | None = None


def reconcile_production(client: MlflowClient, watch: WatchConfig, model: RegisteredModel, wr: WatchReport,
                         now: float, audit_experiment: str, aids: ProductionAids = ProductionAids()) -> None:
    """Settle production (and staging, when protected) under their policies, then score the newest
    production move if it is not scored.

    With ``handoff`` (the daemon's scoring worker) the move that needs scoring is handed over
    (:class:`~watcher.scoring.runner.ProductionMove`) instead of scoring inline; the worker re-reads
    the model's tags, so the once-per-change guarantee is the same.

    With ``cache`` (the daemon's :class:`~watcher.engine.snapshot.AuditCache`), an alias the cache
    shows settled costs no request; any other goes down the exact path (``reconcile_alias``).
    """
    handoff, cache, board = aids.handoff, aids.cache, aids.board
    last, tags, current = _settle(client, watch, model, watch.production_alias,
                                  audit_experiment, now, None if board is not None else cache, board)
    if polices_staging(watch):
        _settle(client, watch, model, watch.staging_alias, audit_experiment, now, cache)
    if current is None or last is None or watch.scoring is None:
        return
    if handoff is None:
        outcome = maybe_score(client, watch, tags, last, now)
        if outcome is not None and outcome.error is None:
            wr.scored.append(outcome.version)
        elif outcome is not None:
            wr.errors.append(f"scoring v{outcome.version}: {outcome.error}")
    elif due(tags, last, now):
        handoff(ProductionMove(watch.model_name, watch.production_alias, last))
        wr.queued.append(str(last.version))


def _settle(client: MlflowClient, watch: WatchConfig, model: RegisteredModel, alias: str,
            experiment: str, now: float,
            cache: AuditCache | None, board: Board | None = None) -> tuple[AuditEntry | None, dict[str, str], str | None]:
    """``reconcile_alias``, skipped when the cached entries show the alias settled (nothing can be due).

    A cache that lags only ever makes an alias look unsettled (its newest entry is not where the
    alias points, or an intent shows open), which takes the exact path: never a skipped move."""
    policy: AliasPolicy = watch.production_policy if alias == watch.production_alias else watch.staging_policy
    if cache is not None:
        current = registry.aliases_of(model).get(alias)
        recent = cache.recent(client, watch.model_name, alias)
        if settled(recent, current, policy):
            return last_done(recent), registry.tags_of(model), current
        cache.touch(watch.model_name, alias)
    return reconcile_alias(client, watch, model, alias, policy, experiment, now, board)
