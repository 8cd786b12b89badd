"""MLflow's registry webhooks that point at this watcher: install (idempotently), list, remove."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookEventStr

from watcher.store.paging import items

WEBHOOK_NAME = "registry-watcher"
EVENTS: list[WebhookEvent | WebhookEventStr] = ["model_version_alias.created", "model_version_alias.deleted"]
"""What ``install`` subscribes to: production moves (and removals) of any model; others are ignored."""


def all_webhooks(client: MlflowClient) -> list[Webhook]:
    """Every webhook of the server, all pages."""
    return list(items(client.list_webhooks, max_results=100))


def install(client: MlflowClient, url: str, secret: str, description: str) -> tuple[str, bool, int]:
    """Create or update the one webhook pointing at ``url``; returns (id, created, duplicates deleted).

    Idempotent: an existing webhook with the same URL is updated (events, secret, status), and any
    further ones with that URL are deleted, so running it twice leaves exactly one.
    """
    same_url = [hook for hook in all_webhooks(client) if hook.url == url]
    if same_url:
        first, *extra = same_url
        client.update_webhook(first.webhook_id, name=WEBHOOK_NAME, description=description[:1000], url=url,
                              events=list(EVENTS), secret=secret, status="ACTIVE")
        for hook in extra:
            client.delete_webhook(hook.webhook_id)
        return str(first.webhook_id), False, len(extra)
    hook = client.create_webhook(name=WEBHOOK_NAME, url=url, events=list(EVENTS), description=description[:1000],
                                 secret=secret, status="ACTIVE")
    return str(hook.webhook_id), True, 0


def listing(client: MlflowClient) -> list[dict[str, object]]:
    """Every webhook of the server as plain data: id, name, URL, events, status (never the secret)."""
    return [{"id": str(hook.webhook_id), "name": hook.name, "url": hook.url,
             "events": [str(event) for event in hook.events], "status": str(hook.status)}
            for hook in all_webhooks(client)]


def uninstall(client: MlflowClient, url: str) -> list[str]:
    """Delete every webhook pointing at ``url``; returns the ids deleted (empty: there was none)."""
    deleted = []
    for hook in all_webhooks(client):
        if hook.url == url:
            client.delete_webhook(hook.webhook_id)
            deleted.append(str(hook.webhook_id))
    return deleted
