"""Command line: ``registry-watcher VERB --config FILE``.

``run`` (the daemon), ``once`` (one pass; exit 1 if any watch errored), ``check-config``,
``status``, ``promote``, ``rollback``, ``history``, ``explain`` and ``webhooks install``. A bad or missing config exits 2 before
anything starts, with each bad field named by its location.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mlflow import MlflowClient

from watcher import audit, history, state
from watcher.client import make_client
from watcher.config import ConfigError, WatchConfig, WatcherConfig, load_config
from watcher.logs import configure_logging, get_logger
from watcher.redact import add_secrets, redact, uri_password

log = get_logger("watcher.cli")
DAEMON_VERBS = {"run", "once", "check-config"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-watcher", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=os.environ.get("REGISTRY_WATCHER_CONFIG", "watcher.yaml"),
                        help="YAML config file (default $REGISTRY_WATCHER_CONFIG or ./watcher.yaml)")
    sub.add_parser("run", parents=[common], help="run the daemon until SIGTERM/SIGINT")
    sub.add_parser("once", parents=[common], help="one full pass over every watch, then exit")
    sub.add_parser("check-config", parents=[common], help="validate the file and reach the server")
    status = sub.add_parser("status", parents=[common], help="aliases, scoring and last decisions per watch")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument("--last", type=int, default=5, help="how many recent decisions to show")
    for verb, text in (("promote", "move the production alias"), ("rollback", "move production back")):
        p = sub.add_parser(verb, parents=[common], help=text)
        p.add_argument("--model", required=True)
        p.add_argument("--version" if verb == "promote" else "--to", dest="version", default=None)
        p.add_argument("--reason", default="", help="why; recorded on the version and in the history")
        p.add_argument("--force", action="store_true",
                       help="move even onto a version the gates rejected or never decided (needs --reason); "
                            "recorded as forced")
    hist = sub.add_parser("history", parents=[common], help="print the production alias history")
    hist.add_argument("--model", required=True)
    hist.add_argument("--json", action="store_true")
    hist.add_argument("--at", default=None, metavar="TIME",
                      help="ISO-8601 time (e.g. 2026-11-20T10:00:00Z): which version held production then, and why")
    expl = sub.add_parser("explain", parents=[common], help="why a run was registered or rejected, and what followed")
    expl.add_argument("--run", required=True, dest="run_id", help="the training run's id")
    expl.add_argument("--json", action="store_true")
    hooks = sub.add_parser("webhooks", help="manage the MLflow webhook that notifies this watcher")
    hooks_sub = hooks.add_subparsers(dest="webhooks_verb", required=True)
    install = hooks_sub.add_parser("install", parents=[common],
                                   help="create or update (idempotently) the MLflow webhook pointing at --url")
    install.add_argument("--url", required=True, help="public URL of POST /webhooks/mlflow on the watcher")
    return parser


def _print(text: str, file=None) -> None:  # noqa: ANN001 - a text stream
    """The CLI's printer: everything it prints is redacted (``watcher.redact``)."""
    print(redact(text), file=file or sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    daemon = args.verb in DAEMON_VERBS
    stream = sys.stdout if daemon else sys.stderr
    configure_logging(stream=stream, capture_stray_output=daemon)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("config_invalid", error=str(exc), config=args.config)
        return 2
    add_secrets(uri_password(u) for u in (config.tracking_uri, config.registry_uri,
                                          config.ha.lock_url if config.ha else None))
    configure_logging(config.log.level, config.log.format, stream=stream, capture_stray_output=daemon)
    client = make_client(config)
    try:
        return _dispatch(args, config, client)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. the server is down: one redacted event, not a raw traceback
        log.error("command_failed", verb=args.verb, error=f"{type(exc).__name__}: {exc}")
        return 1


def _dispatch(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int:
    from watcher import production
    from watcher.daemon import Poller, make_leader, run_daemon

    if args.verb == "run":
        return run_daemon(client, config)
    if args.verb == "once":
        report = Poller(client, config, leader=make_leader(config)).poll()
        return 0 if report is not None and report.ok else 1
    if args.verb == "check-config":
        return _check(client, config)
    if args.verb == "status":
        return _status(client, config, args.json, args.last)
    if args.verb == "explain":
        from watcher import explain

        try:
            found = explain.explain(client, config, args.run_id)
        except explain.ExplainError as exc:
            _print(f"error: {exc}", file=sys.stderr)
            return 1
        _print(json.dumps(found, indent=2, default=str) if args.json else explain.format_text(found))
        return 0
    if args.verb == "webhooks":
        return _webhooks_install(client, config, args.url)
    watch = config.watch_for(args.model)
    if watch is None:
        _print(f"error: no watch for model '{args.model}' in {args.config}", file=sys.stderr)
        return 2
    if args.verb == "history":
        full = production.production_history(client, watch, config.audit_experiment)
        if args.at is not None:
            try:
                when = history.parse_time(args.at)
            except ValueError:
                _print(f"error: --at '{args.at}' is not an ISO-8601 time such as 2026-11-20T10:00:00Z", file=sys.stderr)
                return 2
            held = history.held_at(full, when, args.at)
            _print(json.dumps(held, indent=2) if args.json
                  else history.format_held(watch.model_name, watch.production_alias, held))
            return 0
        entries = [audit.public(e) for e in full]
        _print(history.to_json(entries) if args.json else history.format_table(entries))
        return 0
    move = production.promote if args.verb == "promote" else production.rollback
    try:
        entry = move(client, watch, args.version, args.reason, production.cli_user(), force=args.force,
                     audit_experiment=config.audit_experiment)
    except production.PromotionError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return 1
    _print(f"{watch.model_name}: '{watch.production_alias}' -> v{entry['version']} "
          f"(was {entry['previous'] or 'unset'}){' FORCED' if entry['forced'] else ''}; the running daemon will score it")
    return 0


def _webhooks_install(client: MlflowClient, config: WatcherConfig, url: str) -> int:
    from watcher import webhooks

    try:
        webhook_id, created = webhooks.install(client, config, url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the server refused (scheme, private address, ...)
        print(f"error: MLflow refused the webhook: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"webhook {webhook_id} {'created' if created else 'updated'}: {url} "
          f"({', '.join(webhooks.EVENTS)}); MLflow may take up to MLFLOW_WEBHOOK_CACHE_TTL (60 s) to deliver")
    return 0


def _check(client: MlflowClient, config: WatcherConfig) -> int:
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        log.error("tracking_server_unreachable", error=f"{type(exc).__name__}: {exc}")
        return 1
    for watch in config.watches:
        exists = client.get_experiment_by_name(watch.experiment) is not None
        log.info("config_ok", experiment=watch.experiment, model_name=watch.model_name, experiment_exists=exists,
                 gates=len(watch.gates), scoring=watch.scoring is not None)
    return 0


def _watch_status(client: MlflowClient, watch: WatchConfig, last: int) -> dict:
    try:
        model = client.get_registered_model(watch.model_name)
        aliases, tags = {k: str(v) for k, v in (model.aliases or {}).items()}, dict(model.tags or {})
    except Exception:  # noqa: BLE001 - not created yet
        aliases, tags = {}, {}
    scored = state.load(tags.get(state.SCORED)) or {}
    failure = state.load(tags.get(state.SCORING_FAILURE))
    decisions = []
    experiment = client.get_experiment_by_name(watch.experiment)
    if experiment is not None:
        runs = client.search_runs([experiment.experiment_id], f"tags.`{state.DECISION}` LIKE '%'",
                                  max_results=last, order_by=["attributes.end_time DESC"])
        decisions = [{"run_id": r.info.run_id, "run_name": r.info.run_name, "decision": r.data.tags[state.DECISION],
                      "version": r.data.tags.get(state.MODEL_VERSION), "reason": r.data.tags.get(state.REASON),
                      "decided_at": r.data.tags.get(state.DECIDED_AT)} for r in runs]
    return {"model_name": watch.model_name, "experiment": watch.experiment,
            "staging": aliases.get(watch.staging_alias), "production": aliases.get(watch.production_alias),
            "staging_policy": watch.staging_policy, "production_policy": watch.production_policy,
            "last_scored_version": scored.get("model_version"), "last_scored_at": scored.get("scored_at"),
            "scoring_failure": failure, "decisions": decisions}


def _status(client: MlflowClient, config: WatcherConfig, as_json: bool, last: int) -> int:
    rows = [_watch_status(client, w, last) for w in config.watches]
    if as_json:
        _print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        _print(f"{row['model_name']}  (experiment {row['experiment']})")
        _print(f"  staging:    {row['staging'] or '-':8}  (policy {row['staging_policy']})")
        _print(f"  production: {row['production'] or '-':8}  (policy {row['production_policy']})")
        _print(f"  last scored: v{row['last_scored_version']} at {row['last_scored_at']}"
              if row["last_scored_version"] else "  last scored: -")
        if row["scoring_failure"]:
            f = row["scoring_failure"]
            _print(f"  scoring failing: v{f['model_version']} attempt {f['attempts']}: {f['error'][:120]}")
        _print("  last decisions:")
        for d in row["decisions"] or []:
            detail = f"v{d['version']}" if d["decision"] == "registered" else (d["reason"] or "")
            _print(f"    {d['decided_at'] or '':20}  {d['run_name'] or d['run_id'][:8]:24}  {d['decision']:10}  {detail[:100]}")
        if not row["decisions"]:
            _print("    (none)")
    return 0
