"""The verbs: each a function of the parsed arguments, the config and a client; returns the exit code."""

from __future__ import annotations

import argparse
import json
import sys

from mlflow import MlflowClient

from watcher.cli.output import error, say
from watcher.config import PRECEDENCE, WatcherConfig, env_overrides
from watcher.obs.logs import get_logger

log = get_logger("watcher.cli")


def dispatch(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int:
    """Run the verb named by ``args.verb``."""
    from watcher.engine import promotion
    from watcher.service.daemon import make_leader, run_daemon
    from watcher.service.poller import Poller

    if args.verb == "run":
        return run_daemon(client, config, config_path=args.config)
    if args.verb == "once":
        report = Poller(client, config, leader=make_leader(config, member=False)).poll()
        return 0 if report is not None and report.ok else 1
    if args.verb == "check-config":
        return check(client, config)
    if args.verb == "status":
        from watcher.cli.status import status

        return status(client, config, args.json, args.last)
    if args.verb == "explain":
        return explain(client, config, args.run_id, args.json)
    if args.verb == "webhooks":
        return webhooks_install(client, config, args.url)
    from watcher.engine.discovery import find_watch

    watch = find_watch(client, config, args.model)  # configured, else discovered by experiment tag
    if watch is None:
        error(f"no watch for model '{args.model}' in {args.config}")
        return 2
    if args.verb == "history":
        from watcher.cli.history import history

        return history(client, watch, config.audit_experiment, args.at, args.json)
    move = promotion.promote if args.verb == "promote" else promotion.rollback
    try:
        entry = move(client, watch, args.version, args.reason, promotion.cli_user(), force=args.force,
                     audit_experiment=config.audit_experiment)
    except promotion.PromotionError as exc:
        error(str(exc))
        return 1
    say(f"{watch.model_name}: '{watch.production_alias}' -> v{entry.version} "
        f"(was {entry.previous or 'unset'}){' FORCED' if entry.forced else ''}; the running daemon will score it")
    return 0


def explain(client: MlflowClient, config: WatcherConfig, run_id: str, as_json: bool) -> int:
    """``explain --run``: 1 when the run does not exist."""
    from watcher.cli import explain as explaining

    try:
        found = explaining.explain(client, config, run_id)
    except explaining.ExplainError as exc:
        error(str(exc))
        return 1
    say(json.dumps(found, indent=2, default=str) if as_json else explaining.format_text(found))
    return 0


def webhooks_install(client: MlflowClient, config: WatcherConfig, url: str) -> int:
    """``webhooks install --url``: 2 without a secret, 1 when MLflow refuses it."""
    from watcher.store import webhooks

    if config.http is None or config.http.webhook_secret is None:
        print("error: http.webhook_secret is not set (config file or $WATCHER_HTTP__WEBHOOK_SECRET)", file=sys.stderr)
        return 2
    description = "registry-watcher: production alias events for " + ", ".join(
        sorted({w.model_name for w in config.watches}))
    try:
        webhook_id, created, extra = webhooks.install(client, url, config.http.webhook_secret.get_secret_value(),
                                                      description)
    except Exception as exc:  # noqa: BLE001 - the server refused (scheme, private address, ...)
        print(f"error: MLflow refused the webhook: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    hook_log = get_logger("watcher.webhooks")
    if created:
        hook_log.info("webhook_installed", webhook_id=webhook_id, url=url, created=True, events=webhooks.EVENTS)
    else:
        hook_log.info("webhook_installed", webhook_id=webhook_id, url=url, created=False, duplicates_deleted=extra,
                      events=webhooks.EVENTS)
    print(f"webhook {webhook_id} {'created' if created else 'updated'}: {url} "
          f"({', '.join(map(str, webhooks.EVENTS))}); MLflow may take up to MLFLOW_WEBHOOK_CACHE_TTL (60 s) to deliver")
    return 0


def check(client: MlflowClient, config: WatcherConfig) -> int:
    """``check-config``: the file is valid (else exit 2 earlier); reach the server (else 1)."""
    from watcher.store import experiments

    log.info("config_sources", precedence=PRECEDENCE, env_overrides=env_overrides(),
             tracking_uri=config.tracking_uri)
    try:
        experiments.ping(client)
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        log.error("tracking_server_unreachable", error=f"{type(exc).__name__}: {exc}")
        return 1
    for watch in config.watches:
        exists = experiments.find(client, watch.experiment, deleted="id") is not None
        log.info("config_ok", experiment=watch.experiment, model_name=watch.model_name, experiment_exists=exists,
                 gates=len(watch.gates), scoring=watch.scoring is not None)
    return 0
