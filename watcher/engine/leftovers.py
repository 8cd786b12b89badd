"""The daemon's own leftover intents, settled at start-up: one move, one history entry, one event.

A kill -9 between a staging move's audit intent (``watcher.engine.staging``) and its finish leaves
the intent RUNNING. Nothing else closes it under the default alias policy (staging is watched only
under ``alert``/``revert``), and a move redone after the restart would write a second entry for
the same version. So before its first tick the daemon settles every intent written by the watcher
(``by: watcher``) whose writer is gone (the same host, :func:`watcher.obs.process.is_gone`) or
that is older than the hand-off timeout (another host):

* **finished** when its alias points at its version and no newer entry of that alias exists (the
  move was made: it is the history's newest entry, and its ``alias.moved`` event keeps its id);
* **abandoned** (KILLED, out of the history) otherwise: the alias never got there, or the move was
  redone or overtaken by a newer entry (whose event is the one).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlflow import MlflowClient

from watcher.config import WatcherConfig
from watcher.engine.policy import HANDOFF_TIMEOUT_S, WATCHER
from watcher.obs import process
from watcher.obs.logs import get_logger
from watcher.obs.process import ProcessId
from watcher.store import audit, batch_reads, registry
from watcher.store.audit import AuditEntry

log = get_logger("watcher.engine")


def settle_leftovers(client: MlflowClient, config: WatcherConfig, *, now: float | None = None,
                     gone: Callable[[ProcessId | None], bool | None] = process.is_gone
                     ) -> tuple[list[AuditEntry], list[AuditEntry]]:
    """Finish or abandon the watcher's own intents left open by a process that is gone;
    returns (finished, abandoned). Raises when MLflow cannot be read (tried again next poll)."""
    now = time.time() if now is None else now
    trail = audit.AuditTrail(config.audit_experiment)
    leftovers = [e for e in audit.open_intents(client, trail, WATCHER) if e.model and e.alias and (
        gone(e.writer) is True or now - e.start_ms / 1000 > HANDOFF_TIMEOUT_S)]
    models = batch_reads.models_by_name(client, {e.model for e in leftovers if e.model}) if leftovers else {}
    finished: list[AuditEntry] = []
    abandoned: list[AuditEntry] = []
    for entry in leftovers:
        model = models.get(entry.model or "")
        current = registry.aliases_of(model).get(entry.alias or "") if model is not None else None
        if _stands(client, trail, entry, current):
            finished.append(audit.finish_intent(client, entry))
            log.info("leftover_intent_finished", model_name=entry.model, alias=entry.alias, version=entry.version,
                     entry_id=entry.id, action=entry.action)
        else:
            audit.abandon(client, entry)
            abandoned.append(entry)
            log.warning("leftover_intent_abandoned", model_name=entry.model, alias=entry.alias,
                        version=entry.version, current_version=current, entry_id=entry.id, action=entry.action)
    return finished, abandoned


def _stands(client: MlflowClient, trail: audit.AuditTrail, entry: AuditEntry, current: str | None) -> bool:
    """The intent's move was made and is its alias's newest entry (else a redo or a later move overtook it)."""
    if entry.version is None or current != entry.version or entry.model is None or entry.alias is None:
        return False
    newest = audit.recent(client, trail, entry.model, entry.alias, n=1)
    return bool(newest) and newest[-1].id == entry.id
