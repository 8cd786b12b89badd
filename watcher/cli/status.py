"""``status``: per watch, its state, where staging and production point, the last scoring, the last decisions.

With ``discover``, the experiments are searched once for the tag, and the discovered watches are
listed beside the configured ones; each row says where it came from (``source``: ``config``, or
``discovered (experiment tag, profile P)``). Tagged experiments the watcher refuses (another
experiment owns the model, an unknown profile, ...) are rows too, with ``state: refused`` and the reason.

Each watch's state (``ok``, ``failed`` with its reason and since when, ``refused``) and, under ``ha``,
the replica that holds it, come from the running daemon (``GET /api/v1/watches`` through
``watcher.cli.api``). When no daemon answers, the refusals are worked out here (the same decision the
daemon makes) and the line ``states: ...`` says that failures need the daemon.

Reads are batched so a fleet answers in about the time of one model: the registered models (aliases,
scoring tags) in pages of 1,000, and the recent decisions of 100 experiments per search.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.cli.output import say
from watcher.cli.plan import FleetPlan, plan
from watcher.config import WatcherConfig
from watcher.store import keys, registry
from watcher.store import scoring_records as records
from watcher.store.decision_reads import recent_decisions_of

STATE_TIMEOUT_S = 3.0
"""How long ``status`` waits for the daemon's API before saying the states are unknown."""


def _decision_row(run: Run) -> dict[str, Any]:
    tags = run.data.tags
    return {"run_id": run.info.run_id, "run_name": run.info.run_name, "decision": tags[keys.DECISION],
            "version": tags.get(keys.MODEL_VERSION), "reason": tags.get(keys.REASON),
            "decided_at": tags.get(keys.DECIDED_AT)}


def watch_rows(client: MlflowClient, planned: FleetPlan, last: int) -> list[dict[str, Any]]:
    """One row per watch (``status --json`` prints them): the models as the plan read them (one
    batch), each experiment's ``last`` decisions in batches of experiments (``decision_reads``)."""
    decided = recent_decisions_of(client, [p.experiment_id for p in planned.watched if p.experiment_id], last)
    rows = []
    for item in planned.watched:
        watch, model = item.watch, planned.models.get(item.model)
        aliases = registry.aliases_of(model) if model is not None else {}
        tags = registry.tags_of(model) if model is not None else {}
        scored, failure = records.read_scored(tags), records.read_failure(tags)
        rows.append({"model_name": item.model, "experiment": item.experiment, "experiment_id": item.experiment_id,
                     "source": item.source, "state": None, "reason": None, "since": None, "held_by": None,
                     "staging": aliases.get(watch.staging_alias), "production": aliases.get(watch.production_alias),
                     "staging_policy": watch.staging_policy, "production_policy": watch.production_policy,
                     "last_scored_version": scored.model_version if scored else None,
                     "last_scored_at": scored.scored_at if scored else None,
                     "scoring_failure": failure.as_json() if failure else None,
                     "decisions": [_decision_row(r) for r in decided.get(item.experiment_id or "", [])]})
    return rows


def daemon_states(config: WatcherConfig) -> tuple[list[dict[str, Any]] | None, str]:
    """The daemon's ``GET /api/v1/watches`` rows and where they came from, or None and why not."""
    from watcher.cli.api import ApiUnavailable, api_request, api_url

    try:
        answer = api_request(config, "GET", "/api/v1/watches", timeout_s=STATE_TIMEOUT_S)
    except ApiUnavailable as exc:
        return None, str(exc)
    if not answer.is_success or not isinstance(answer.body, dict) or not isinstance(answer.body.get("watches"), list):
        return None, f"the daemon's API answered {answer.status}: {answer.detail[:200]}"
    return [w for w in answer.body["watches"] if isinstance(w, dict)], f"from the daemon at {api_url(config)}"


def _refused_row(item: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": item.get("model_name") or item.get("model"), "experiment": item.get("experiment"),
            "experiment_id": item.get("experiment_id"), "source": "refused", "state": "refused",
            "reason": item.get("reason"), "since": item.get("since"), "held_by": None,
            "owner_experiment": item.get("owner_experiment"), "decisions": []}


def with_states(rows: list[dict[str, Any]], live: list[dict[str, Any]] | None,
                refused: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each watch's state from the daemon (``live``), then the refused experiments:
    the daemon's when it answered, else ``refused`` (worked out here)."""
    if live is None:
        return rows + [_refused_row(r) for r in refused]
    by_key = {(w.get("experiment"), w.get("model")): w for w in live}
    for row in rows:
        found = by_key.get((row["experiment"], row["model_name"]))
        if found is not None:
            row.update(state=found.get("state"), reason=found.get("reason"), since=found.get("since"),
                       held_by=found.get("held_by"))
    return rows + [_refused_row(w) for w in live if w.get("state") == "refused"]


def status(client: MlflowClient, config: WatcherConfig, as_json: bool, last: int) -> int:
    """The ``status`` verb."""
    planned = plan(client, config)
    live, origin = daemon_states(config)
    rows = with_states(watch_rows(client, planned, last), live, [r.as_json() for r in planned.refused])
    if as_json:
        say(json.dumps(rows, indent=2))
        return 0
    say(f"states: {origin}" if live is not None else
        f"states: refusals worked out here; failed watches and replicas need the daemon's API ({origin})")
    for row in rows:
        _print_row(row)
    return 0


def _print_row(row: dict[str, Any]) -> None:
    if row["state"] == "refused":
        say(f"{row['model_name']}  (experiment {row['experiment']}; REFUSED: {row['reason']})")
        return
    state = row["state"] or "unknown (no daemon)"
    held = f"; held by {row['held_by']}" if row["held_by"] else ""
    say(f"{row['model_name']}  (experiment {row['experiment']}; {row['source']}; state {state}{held})")
    if row["state"] == "failed":
        say(f"  FAILED since {row['since']}: {row['reason']}")
    say(f"  staging:    {row['staging'] or '-':8}  (policy {row['staging_policy']})")
    say(f"  production: {row['production'] or '-':8}  (policy {row['production_policy']})")
    say(f"  last scored: v{row['last_scored_version']} at {row['last_scored_at']}"
        if row["last_scored_version"] else "  last scored: -")
    if row["scoring_failure"]:
        f = row["scoring_failure"]
        say(f"  scoring failing: v{f['model_version']} attempt {f['attempts']}: {f['error'][:120]}")
    _print_decisions(row["decisions"])


def _print_decisions(decisions: list[dict[str, Any]]) -> None:
    say("  last decisions:")
    for d in decisions:
        detail = f"v{d['version']}" if d["decision"] == "registered" else (d["reason"] or "")
        say(f"    {d['decided_at'] or '':20}  {d['run_name'] or d['run_id'][:8]:24}  {d['decision']:10}  "
            f"{detail[:100]}")
    if not decisions:
        say("    (none)")
