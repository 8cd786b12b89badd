"""The audit trail of alias moves: one MLflow run per move in the audit experiment.

Every move of a watched alias (a ``promote``, a ``rollback``, a move made outside the watcher and
seen by the daemon, a removal) is one run in ``audit_experiment`` (default
``registry-watcher-audit``), tagged ``watcher.kind=audit`` and ``watcher.audit.*``: model, alias,
from and to version, actor (``by``), action, reason (full text up to MLflow's 8,000-character tag
limit, longer cut with a marker), forced flag and time. It shows in the MLflow UI and is searchable
by model (``tags.`watcher.audit.model` = 'M'``). Nothing is ever trimmed.

Ordering is total and needs no read-modify-write of a shared value: entries sort by the run's
``start_time`` (ms), then a migrated entry's old ``seq``, then the run id; the run id is the
entry's stable ``id`` (scoring is keyed on it). Two writers (the CLI and the daemon) each create
their own run, so neither can overwrite the other.

A run's status is the entry's state: ``RUNNING`` is an *intent* (``promote`` writes it before it
moves the alias, then finishes it), ``FINISHED`` a recorded move, ``KILLED`` an intent abandoned
before its alias moved (it is not part of the history).

Upgrade: entries of the old ``watcher.production_history`` registered-model tag are carried into
the audit experiment once, each keyed by its old ``seq`` (checked before writing, so a crash in
the middle is finished on the next call without duplicates); the old tag is left as it was and
``watcher.audit_migrated`` marks the model as done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus

from watcher import history, state
from watcher.logs import get_logger

log = get_logger("watcher.audit")

PREFIX = "watcher.audit."
MODEL, ALIAS, VERSION, PREVIOUS = (PREFIX + k for k in ("model", "alias", "version", "previous"))
BY, ACTION, REASON, FORCED, AT, LEGACY_SEQ = (PREFIX + k for k in ("by", "action", "reason", "forced", "at",
                                                                    "legacy_seq"))
MIGRATED = "watcher.audit_migrated"
NOTE = "mlflow.note.content"  # the run description in the MLflow UI
STATUS = {"RUNNING": "pending", "FINISHED": "done", "KILLED": "abandoned"}
PAGE = 1000
_IDS: dict[tuple[str, str], str] = {}
"""(tracking URI, experiment name) -> id, so an idle poll does not look the experiment up again."""


def experiment_id(client: MlflowClient, name: str, create: bool = True) -> str | None:
    """The audit experiment's id; created (tagged ``watcher.kind=audit``) when missing and ``create``."""
    key = (str(getattr(client, "tracking_uri", "")), name)
    if key in _IDS:
        return _IDS[key]
    experiment = client.get_experiment_by_name(name)
    if experiment is None and create:
        try:
            client.create_experiment(name, tags={state.KIND: "audit"})
        except Exception:  # noqa: BLE001 - another writer created it first; read it below
            pass
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise RuntimeError(f"cannot create the audit experiment '{name}'")
    if experiment is None:
        return None
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(f"the audit experiment '{name}' is deleted; restore it or set audit_experiment")
    _IDS[key] = experiment.experiment_id
    return experiment.experiment_id


def _version(value: str | None) -> str | None:
    return value or None


def _entry(run: Run) -> dict[str, Any]:
    tags = run.data.tags
    legacy = tags.get(LEGACY_SEQ)
    return {
        "id": run.info.run_id, "model": tags.get(MODEL), "alias": tags.get(ALIAS),
        "version": _version(tags.get(VERSION)), "previous": _version(tags.get(PREVIOUS)),
        "at": tags.get(AT) or state.now_iso(run.info.start_time), "by": tags.get(BY, ""),
        "action": tags.get(ACTION, ""), "reason": tags.get(REASON, ""),
        "forced": tags.get(FORCED) == "true", "status": STATUS.get(run.info.status, run.info.status.lower()),
        "start_ms": run.info.start_time or 0, "legacy_seq": int(legacy) if legacy else None,
    }


def _order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Total order: start time, then a migrated entry's old seq, then the run id; dedupe migrations."""
    entries = sorted(entries, key=lambda e: (e["start_ms"], e["legacy_seq"] or 0, e["id"]))
    seen: set[int] = set()
    kept = []
    for entry in entries:
        if entry["legacy_seq"] is not None:
            if entry["legacy_seq"] in seen:
                continue  # two processes migrated at once: the first copy counts
            seen.add(entry["legacy_seq"])
        kept.append(entry)
    return kept


def _filter(model_name: str, alias: str) -> str:
    return f"tags.`{MODEL}` = '{model_name}' AND tags.`{ALIAS}` = '{alias}'"


def entries(client: MlflowClient, experiment: str, model_name: str, alias: str,
            include: tuple[str, ...] = ("done",)) -> list[dict[str, Any]]:
    """Every entry of ``model_name``'s ``alias``, oldest first, numbered ``seq`` 1..n (``done`` only by default)."""
    exp_id = experiment_id(client, experiment, create=False)
    if exp_id is None:
        return []
    found, token = [], None
    while True:
        page = client.search_runs([exp_id], _filter(model_name, alias), max_results=PAGE,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        found.extend(_entry(run) for run in page)
        token = page.token
        if not token:
            break
    kept = [e for e in _order(found) if e["status"] in include]
    for seq, entry in enumerate(kept, 1):
        entry["seq"] = seq
    return kept


def recent(client: MlflowClient, experiment: str, model_name: str, alias: str, n: int = 10) -> list[dict[str, Any]]:
    """The newest ``n`` entries in any state (intents included), oldest first: one request."""
    exp_id = experiment_id(client, experiment, create=False)
    if exp_id is None:
        return []
    runs = client.search_runs([exp_id], _filter(model_name, alias), max_results=n,
                              order_by=["attributes.start_time DESC"])
    return _order([_entry(run) for run in runs])


def begin(client: MlflowClient, experiment: str, *, model_name: str, alias: str, version: str | None,
          previous: str | None, by: str, action: str, reason: str, forced: bool = False,
          at_ms: int | None = None, legacy_seq: int | None = None) -> dict[str, Any]:
    """Create the entry as an intent (a RUNNING run); :func:`finish` makes it a recorded move."""
    at = state.now_iso(at_ms)
    reason = state.truncate(reason or "", state.RUN_TAG_LIMIT)
    tags = {state.KIND: "audit", MODEL: model_name, ALIAS: alias, VERSION: version or "",
            PREVIOUS: previous or "", BY: by, ACTION: action, REASON: reason,
            FORCED: "true" if forced else "false", AT: at, NOTE: reason or f"{action} by {by}"}
    if legacy_seq is not None:
        tags[LEGACY_SEQ] = str(legacy_seq)
    name = f"{model_name} {alias}: v{previous or '-'} -> v{version or '-'} ({action})"
    run = client.create_run(experiment_id(client, experiment) or "", start_time=at_ms, tags=tags, run_name=name)
    return _entry(run)


def finish(client: MlflowClient, entry: dict[str, Any]) -> dict[str, Any]:
    """Mark an intent as a recorded move (idempotent: the CLI and the daemon may both call it)."""
    client.set_terminated(entry["id"], RunStatus.to_string(RunStatus.FINISHED), end_time=None)
    return {**entry, "status": "done"}


def abandon(client: MlflowClient, entry: dict[str, Any]) -> None:
    """An intent whose alias never moved: KILLED, so it is not part of the history."""
    client.set_terminated(entry["id"], RunStatus.to_string(RunStatus.KILLED))


def record(client: MlflowClient, experiment: str, **fields: Any) -> dict[str, Any]:
    """Create and finish an entry (a move already made, e.g. one observed by the daemon)."""
    return finish(client, begin(client, experiment, **fields))


def _iso_ms(iso: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def migrate_legacy(client: MlflowClient, experiment: str, model_name: str, tags: dict[str, str], alias: str,
                   crash: Callable[[str], None] = lambda point: None) -> int:
    """Carry the old ``watcher.production_history`` tag's entries into the audit trail, once.

    ``tags`` are the registered model's tags in hand (updated in place); returns how many entries
    were written now. Costs nothing once ``watcher.audit_migrated`` is set.
    """
    if MIGRATED in tags or state.HISTORY not in tags:
        return 0
    old = history.read(tags)
    done = {e["legacy_seq"] for e in entries(client, experiment, model_name, alias, include=tuple(STATUS.values()))}
    written = 0
    for item in old:
        if item.get("seq") in done:
            continue
        record(client, experiment, model_name=model_name, alias=alias, version=item.get("version"),
               previous=item.get("previous"), by=str(item.get("by", "")), action=str(item.get("action", "")),
               reason=str(item.get("reason", "")), at_ms=_iso_ms(item.get("at")), legacy_seq=int(item["seq"]))
        written += 1
        crash("after_migrate_entry")
    value = state.dump({"entries": len(old), "migrated_at": state.now_iso()})
    client.set_registered_model_tag(model_name, MIGRATED, value)
    tags[MIGRATED] = value
    log.info("audit_history_migrated", model_name=model_name, entries=len(old), written=written)
    return written


def public(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as ``history --json`` shows it (no internal sort fields)."""
    return {k: v for k, v in entry.items() if k not in ("start_ms", "model", "status") and
            not (k == "legacy_seq" and v is None)}
