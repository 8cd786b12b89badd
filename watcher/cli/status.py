"""``status``: per watch, where staging and production point, the last scoring, the last decisions.

With ``discover``, the experiments are searched once for the tag, and the discovered watches are
listed beside the configured ones; each row says where it came from (``source``: ``config``, or
``discovered (experiment tag, profile P)``)."""

from __future__ import annotations

import json
from typing import Any

from mlflow import MlflowClient

from watcher.cli.output import say
from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.discovery import Discovery
from watcher.store import experiments, keys, registry
from watcher.store import scoring_records as records
from watcher.store.runs import recent_decisions


def watch_status(client: MlflowClient, watch: WatchConfig, last: int) -> dict[str, Any]:
    """One watch's row (``status --json`` prints a list of them)."""
    try:
        model = registry.find_model(client, watch.model_name)
    except Exception:  # noqa: BLE001 - not readable (not created yet, no permission): shown as unset
        model = None
    aliases = registry.aliases_of(model) if model is not None else {}
    tags = registry.tags_of(model) if model is not None else {}
    scored = records.read_scored(tags)
    failure = records.read_failure(tags)
    decisions = []
    experiment_id = experiments.find(client, watch.experiment, deleted="id")
    if experiment_id is not None:
        decisions = [{"run_id": r.info.run_id, "run_name": r.info.run_name, "decision": r.data.tags[keys.DECISION],
                      "version": r.data.tags.get(keys.MODEL_VERSION), "reason": r.data.tags.get(keys.REASON),
                      "decided_at": r.data.tags.get(keys.DECIDED_AT)}
                     for r in recent_decisions(client, experiment_id, last)]
    return {"model_name": watch.model_name, "experiment": watch.experiment,
            "staging": aliases.get(watch.staging_alias), "production": aliases.get(watch.production_alias),
            "staging_policy": watch.staging_policy, "production_policy": watch.production_policy,
            "last_scored_version": scored.model_version if scored else None,
            "last_scored_at": scored.scored_at if scored else None,
            "scoring_failure": failure.as_json() if failure else None, "decisions": decisions}


def status(client: MlflowClient, config: WatcherConfig, as_json: bool, last: int) -> int:
    """The ``status`` verb."""
    discovery = Discovery()
    discovery.refresh(client, config)  # once, on demand (no-op without discover)
    rows = [{**watch_status(client, w, last), "source": discovery.source_of(w.experiment)}
            for w in discovery.watches(config)]
    if as_json:
        say(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        say(f"{row['model_name']}  (experiment {row['experiment']}; {row['source']})")
        say(f"  staging:    {row['staging'] or '-':8}  (policy {row['staging_policy']})")
        say(f"  production: {row['production'] or '-':8}  (policy {row['production_policy']})")
        say(f"  last scored: v{row['last_scored_version']} at {row['last_scored_at']}"
            if row["last_scored_version"] else "  last scored: -")
        if row["scoring_failure"]:
            f = row["scoring_failure"]
            say(f"  scoring failing: v{f['model_version']} attempt {f['attempts']}: {f['error'][:120]}")
        say("  last decisions:")
        for d in row["decisions"] or []:
            detail = f"v{d['version']}" if d["decision"] == "registered" else (d["reason"] or "")
            say(f"    {d['decided_at'] or '':20}  {d['run_name'] or d['run_id'][:8]:24}  {d['decision']:10}  "
                f"{detail[:100]}")
        if not row["decisions"]:
            say("    (none)")
    return 0
