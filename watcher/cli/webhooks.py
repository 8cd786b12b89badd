"""``registry-watcher webhooks install|list|uninstall``: the MLflow webhooks that notify watchers.

MLflow delivers to every webhook until it is deleted, so a decommissioned replica's webhook is
removed with ``uninstall --url``; ``list`` shows what the server will deliver to.
"""

from __future__ import annotations

import argparse
import json

from mlflow import MlflowClient

from watcher.cli.output import say, say_error
from watcher.config import WatcherConfig
from watcher.obs.logs import get_logger

log = get_logger("watcher.webhooks")


def dispatch(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int:
    """Run ``webhooks <verb>``."""
    if args.webhooks_verb == "list":
        return list_hooks(client, args.json)
    if args.webhooks_verb == "uninstall":
        return uninstall(client, args.url)
    return install(client, config, args.url)


def list_hooks(client: MlflowClient, as_json: bool) -> int:
    """``webhooks list``: one line per webhook (id, status, URL, events), or ``--json``; exit 0."""
    from watcher.store import webhooks

    hooks = webhooks.listing(client)
    if as_json:
        say(json.dumps(hooks, indent=2))
        return 0
    if not hooks:
        say("no webhooks")
    for hook in hooks:
        events = ",".join(str(e) for e in hook["events"])  # type: ignore[attr-defined]
        say(f"{hook['id']}  {hook['status']:<8}  {hook['url']}  {events}  ({hook['name']})")
    return 0


def uninstall(client: MlflowClient, url: str) -> int:
    """``webhooks uninstall --url``: delete the webhook(s) for URL; exit 1 when there is none."""
    from watcher.store import webhooks

    deleted = webhooks.uninstall(client, url)
    if not deleted:
        say_error(f"no webhook points at {url}")
        return 1
    for webhook_id in deleted:
        log.info("webhook_uninstalled", webhook_id=webhook_id, url=url)
    say(f"webhook {', '.join(deleted)} deleted: {url}")
    return 0


def install(client: MlflowClient, config: WatcherConfig, url: str) -> int:
    """``webhooks install --url``: 2 without a secret, 1 when MLflow refuses it."""
    from watcher.store import webhooks

    if config.http is None or config.http.webhook_secret is None:
        say_error("http.webhook_secret is not set (config file or $WATCHER_HTTP__WEBHOOK_SECRET)")
        return 2
    description = "registry-watcher: production alias events for " + ", ".join(
        sorted({w.model_name for w in config.watches}))
    try:
        webhook_id, created, extra = webhooks.install(client, url, config.http.webhook_secret.get_secret_value(),
                                                      description)
    except Exception as exc:  # noqa: BLE001 - the server refused (scheme, private address, ...)
        say_error(f"MLflow refused the webhook: {type(exc).__name__}: {exc}")
        return 1
    if created:
        log.info("webhook_installed", webhook_id=webhook_id, url=url, created=True, events=webhooks.EVENTS)
    else:
        log.info("webhook_installed", webhook_id=webhook_id, url=url, created=False, duplicates_deleted=extra,
                 events=webhooks.EVENTS)
    say(f"webhook {webhook_id} {'created' if created else 'updated'}: {url} "
        f"({', '.join(map(str, webhooks.EVENTS))}); MLflow may take up to MLFLOW_WEBHOOK_CACHE_TTL (60 s) to deliver")
    return 0
