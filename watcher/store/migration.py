"""Upgrade: the legacy ``watcher.production_history`` registered-model tag, carried into the audit trail once.

Earlier releases kept the production history in that tag (a versioned JSON list of entries with a
``seq``). Each old entry becomes an audit run keyed by its ``seq`` (checked before writing, so a
crash in the middle is finished by the next call without duplicates); the old tag is left as it
was and ``watcher.audit_migrated`` marks the model as done. The daemon runs it at start-up (the
first tick that reaches each model), the CLI before it reads or writes the history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlflow import MlflowClient

from watcher.obs.logs import get_logger
from watcher.store import audit, keys
from watcher.store.codec import dump, load, now_iso, parse_time_or_none

log = get_logger("watcher.audit")


def legacy_entries(tags: dict[str, str]) -> list[dict[str, Any]]:
    """The legacy tag's entries, oldest first (empty when none)."""
    data = load(tags.get(keys.HISTORY))
    return list(data.get("entries", [])) if data else []


def migrate_legacy(client: MlflowClient, experiment: audit.AuditTrail | str, model_name: str, tags: dict[str, str],
                   alias: str,
                   crash: Callable[[str], None] = lambda _point: None) -> int:
    """Carry the old tag's entries into the audit trail, once.

    ``tags`` are the registered model's tags in hand (updated in place); returns how many entries
    were written now. Costs nothing once ``watcher.audit_migrated`` is set.
    """
    if keys.AUDIT_MIGRATED in tags or keys.HISTORY not in tags:
        return 0
    old = legacy_entries(tags)
    trail = audit.trail(experiment)
    done = {e.legacy_seq for e in audit.entries(client, trail, model_name, alias, include=audit.ALL_STATES)}
    written = 0
    for item in old:
        if item.get("seq") in done:
            continue
        audit.record(client, trail, audit.AliasMove(
            model_name, alias, item.get("version"), item.get("previous"), by=str(item.get("by", "")),
            action=str(item.get("action", "")), reason=str(item.get("reason", "")),
            at_ms=parse_time_or_none(item.get("at")), legacy_seq=int(item["seq"])))
        written += 1
        crash("after_migrate_entry")
    value = dump({"entries": len(old), "migrated_at": now_iso()})
    client.set_registered_model_tag(model_name, keys.AUDIT_MIGRATED, value)
    tags[keys.AUDIT_MIGRATED] = value
    log.info("audit_history_migrated", model_name=model_name, entries=len(old), written=written)
    return written
