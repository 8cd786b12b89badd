"""Who feeds a registered model: the claim tag, the experiments its versions came from, the
``claim`` entries of the audit trail, and a discovered experiment's onboarding window.

* The claim is a registered-model tag (``registry-watcher.source_experiment``) holding the id of
  the one experiment that feeds the model (``watcher.engine.ownership`` decides; this module reads
  and writes).
* :func:`version_sources` says which experiments a model's versions came from (a version's
  ``watcher.experiment_id`` lineage tag, else its run's experiment): the upgrade path of a model
  registered before claims existed, and the check of a model that already has versions.
* A ``claim`` (the CLI moving ownership on purpose) is one run of the audit experiment, tagged
  ``watcher.audit.action=claim`` with who, from which experiment to which, and why. It carries no
  alias tag, so no alias history ever shows it.
* First sight and the onboarding window (``discover.backfill``): an experiment tag saying when the
  watcher first saw the experiment tagged with a model, and a model tag per experiment bounding
  which runs are candidates (``from_ms``) and which are a backfill (before ``until_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from watcher.obs import process
from watcher.store import keys
from watcher.store.audit import AuditTrail
from watcher.store.codec import dump, load, now_iso, truncate
from watcher.store.paging import items

VERSION_PAGE = 1000
ACTION_CLAIM = "claim"


def claim_of(tags: dict[str, str]) -> str | None:
    """The id of the experiment that feeds the model (its claim tag), None when unclaimed."""
    value = (tags.get(keys.SOURCE_EXPERIMENT) or "").strip()
    return value or None


def write_claim(client: MlflowClient, model_name: str, experiment_id: str) -> None:
    """Record ``experiment_id`` as the one experiment that feeds ``model_name``."""
    client.set_registered_model_tag(model_name, keys.SOURCE_EXPERIMENT, str(experiment_id))


def version_sources(client: MlflowClient, model_name: str) -> dict[str, int]:
    """Experiment id -> the newest version number it gave ``model_name`` (empty: no versions).

    A version's experiment is its lineage tag when the watcher made it, else its run's experiment
    (one ``get_run`` per such run; a deleted run counts for no experiment)."""
    sources: dict[str, int] = {}
    runs: dict[str, str | None] = {}
    for version in items(client.search_model_versions, f"name='{model_name}'", max_results=VERSION_PAGE):
        exp_id = (version.tags or {}).get(keys.EXPERIMENT_ID)
        if not exp_id and version.run_id:
            if version.run_id not in runs:
                runs[version.run_id] = _run_experiment(client, version.run_id)
            exp_id = runs[version.run_id]
        if exp_id:
            sources[str(exp_id)] = max(sources.get(str(exp_id), 0), int(version.version))
    return sources


def _run_experiment(client: MlflowClient, run_id: str) -> str | None:
    try:
        return str(client.get_run(run_id).info.experiment_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None


@dataclass(frozen=True)
class ClaimRecord:
    """One move of a model's ownership, as the audit trail records it."""

    model_name: str
    previous: str
    """The experiment that fed the model before, ``name (id)``; empty when it was unclaimed."""
    current: str
    """The experiment that feeds it from now on, ``name (id)``."""
    by: str
    reason: str
    at: str = ""
    """ISO-8601 UTC time (set when read back)."""
    id: str = ""
    """The audit run's id (set when written or read back)."""


def record_claim(client: MlflowClient, trail: AuditTrail, claim: ClaimRecord) -> ClaimRecord:
    """Write the claim to the audit trail as one finished run; returns it with its id and time."""
    at = now_iso()
    reason = truncate(claim.reason, keys.RUN_TAG_LIMIT)
    writer = process.current()
    tags = {keys.KIND: keys.KIND_AUDIT, keys.AUDIT_MODEL: claim.model_name, keys.AUDIT_ACTION: ACTION_CLAIM,
            keys.AUDIT_BY: claim.by, keys.AUDIT_REASON: reason, keys.AUDIT_AT: at,
            keys.AUDIT_OWNER_FROM: claim.previous, keys.AUDIT_OWNER_TO: claim.current,
            keys.AUDIT_HOST: writer.host, keys.AUDIT_PID: str(writer.pid), keys.AUDIT_PROCESS_START: writer.started,
            keys.NOTE: f"ownership of {claim.model_name}: {claim.previous or 'unclaimed'} -> {claim.current}: {reason}"}
    run = client.create_run(trail.ensure(client), tags=tags,
                            run_name=f"{claim.model_name} owner: {claim.previous or '-'} -> {claim.current} (claim)")
    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
    return ClaimRecord(claim.model_name, claim.previous, claim.current, claim.by, reason, at, run.info.run_id)


def claim_records(client: MlflowClient, trail: AuditTrail, model_name: str) -> list[ClaimRecord]:
    """Every ``claim`` of ``model_name`` in the audit trail, oldest first."""
    exp_id = trail.find(client)
    if exp_id is None:
        return []
    query = f"tags.`{keys.AUDIT_MODEL}` = '{model_name}' AND tags.`{keys.AUDIT_ACTION}` = '{ACTION_CLAIM}'"
    found = items(client.search_runs, [exp_id], query, max_results=VERSION_PAGE, order_by=["attributes.start_time ASC"])
    return [ClaimRecord(model_name, t.get(keys.AUDIT_OWNER_FROM, ""), t.get(keys.AUDIT_OWNER_TO, ""),
                        t.get(keys.AUDIT_BY, ""), t.get(keys.AUDIT_REASON, ""), t.get(keys.AUDIT_AT, ""),
                        run.info.run_id) for run in found for t in [run.data.tags]]


# ---- first sight and the onboarding window (discover.backfill) ----

def first_seen_of(experiment_tags: dict[str, str], model_name: str) -> int | None:
    """Epoch ms when the experiment was first seen tagged with ``model_name``; None when never (or
    it was tagged with another model then: a new model is a new first sight)."""
    data = load(experiment_tags.get(keys.FIRST_SEEN))
    if not data or data.get("model") != model_name:
        return None
    try:
        return int(data["at_ms"])
    except (KeyError, TypeError, ValueError):
        return None


def write_first_seen(client: MlflowClient, experiment_id: str, model_name: str, at_ms: int) -> None:
    """Record the first sight of the experiment tagged with ``model_name``."""
    client.set_experiment_tag(experiment_id, keys.FIRST_SEEN,
                              dump({"model": model_name, "at_ms": int(at_ms), "at": now_iso(at_ms)}))


@dataclass(frozen=True)
class Onboarding:
    """Which runs of one discovered experiment feed the model: those that ended at or after
    ``from_ms``; those before ``until_ms`` (its first sighting) are a backfill, taken in batches."""

    from_ms: int
    until_ms: int

    def backfilling(self, cursor_ms: int) -> bool:
        """Whether runs older than the first sighting are still to come at this cursor."""
        return self.from_ms < self.until_ms and cursor_ms < self.until_ms


def onboarding_of(model_tags: dict[str, str], experiment_id: str) -> Onboarding | None:
    """The experiment's onboarding window on the model; None when it has none (watched before)."""
    data = load(model_tags.get(keys.onboarding_key(experiment_id)))
    if not data:
        return None
    try:
        return Onboarding(int(data["from_ms"]), int(data["until_ms"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_onboarding(client: MlflowClient, model_name: str, experiment_id: str, window: Onboarding) -> None:
    """Record a new watch's onboarding window on its model (before its first run is decided)."""
    client.set_registered_model_tag(model_name, keys.onboarding_key(experiment_id),
                                    dump({"from_ms": window.from_ms, "until_ms": window.until_ms,
                                          "from": now_iso(window.from_ms), "until": now_iso(window.until_ms)}))


def window_start(model_tags: dict[str, str], experiment_id: str) -> int:
    """Epoch ms before which no run of the experiment is a candidate (0: its whole history)."""
    window = onboarding_of(model_tags, experiment_id)
    return 0 if window is None else window.from_ms
