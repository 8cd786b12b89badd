"""The ``slack`` output: one readable line per alias move and per rejected run, to an incoming webhook.

A POST of ``{"text": line}`` (Slack's mrkdwn: ``<url|label>`` links, ``&``, ``<`` and ``>`` escaped)
to the webhook URL, which is a secret: it is never logged, and every error text has it masked. By
default only ``alias.moved`` and rejected ``run.decided`` events are sent; an output whose ``types``
filter names ``run.decided`` also gets registered runs, and ``scoring.finished`` or
``approval.changed`` when named.

Answers: 2xx delivered; 404 (``no_service``: the webhook was removed), 410 (``channel_is_archived``)
and 403 (``invalid_token``, ``action_prohibited``) disable the output until ``events enable`` (no
retry can succeed); 429, 5xx, any other status, or no answer within the timeout: retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import requests

from watcher.config.events import SlackOutputConfig
from watcher.events.http import reach
from watcher.events.model import DeliveryResult, OutgoingEvent
from watcher.obs.redact import redact

DISABLING_STATUSES = frozenset({403, 404, 410})


def escape(text: object) -> str:
    """Slack's mrkdwn escaping of a value shown as text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: object) -> str:
    """``<url|label>``, or the escaped label alone when there is no UI URL."""
    return f"<{url}|{escape(label)}>" if url else escape(label)


class SlackText:
    """The line of one event, with links into the MLflow UI at ``ui_url`` (None: no links)."""

    def __init__(self, ui_url: str | None) -> None:
        self._ui = ui_url.rstrip("/") if ui_url else None

    def version_url(self, model: str, version: object) -> str | None:
        return f"{self._ui}/#/models/{quote(model, safe='')}/versions/{version}" if self._ui else None

    def run_url(self, experiment_id: object, run_id: object) -> str | None:
        return f"{self._ui}/#/experiments/{experiment_id}/runs/{run_id}" if self._ui and experiment_id else None

    def render(self, event: OutgoingEvent) -> str:
        """One line for ``event`` (every type has one; which are sent is :meth:`SlackOutput.wants`)."""
        data: dict[str, Any] = dict(event.data)
        kind = event.short_type
        if kind == "alias.moved":
            return self._alias_moved(data)
        if kind == "run.decided":
            return self._run_decided(data)
        if kind == "scoring.finished":
            return self._scoring_finished(data)
        fields = ", ".join(f"{k}: {escape(v)}" for k, v in sorted(data.items()) if v is not None)
        return f"*{escape(event.model)}* {escape(kind)}: {fields}"

    def _alias_moved(self, data: dict[str, Any]) -> str:
        model, version = str(data.get("model")), data.get("version")
        was = f" (was v{escape(data['previous_version'])})" if data.get("previous_version") else ""
        who = escape(data.get("moved_by") or "someone outside the watcher")
        why = f": {escape(data['reason'])}" if data.get("reason") else ""
        target = link(self.version_url(model, version), f"{model} v{version}")
        return f":twisted_rightwards_arrows: *{target}* is now `@{escape(data.get('alias'))}`{was}, by {who}{why}"

    def _run_decided(self, data: dict[str, Any]) -> str:
        model, run_id = str(data.get("model")), str(data.get("run_id"))
        run = link(self.run_url(data.get("experiment_id"), run_id), f"run {run_id[:8]}")
        if data.get("decision") == "registered":
            target = link(self.version_url(model, data.get("version")), f"{model} v{data.get('version')}")
            return f":white_check_mark: {run} registered as *{target}* by registry-watcher"
        reasons = "; ".join(escape(r) for r in data.get("reasons") or []) or "no reason given"
        return f":no_entry: {run} rejected for *{escape(model)}* by registry-watcher: {reasons}"

    def _scoring_finished(self, data: dict[str, Any]) -> str:
        model, version = str(data.get("model")), data.get("version")
        target = link(self.version_url(model, version), f"{model} v{version}")
        seconds = data.get("duration_seconds")
        took = f" in {float(seconds):.1f} s" if isinstance(seconds, (int, float)) else ""
        return (f":bar_chart: scoring of *{target}* {escape(data.get('status'))}: {escape(data.get('rows'))} rows"
                f"{took} -> {escape(data.get('output'))}")


class SlackOutput:
    """POSTs one line per wanted event to a Slack incoming webhook."""

    def __init__(self, config: SlackOutputConfig, ui_url: str | None = None) -> None:
        self.name = config.name
        self._config = config
        self._url = config.url_value() or ""
        self._missing = None if self._url else f"the environment variable {config.url_env} (url_env) is not set"
        self._text = SlackText(ui_url)
        self._session = requests.Session()

    def wants(self, event: OutgoingEvent) -> bool:
        """The output's filters (``SlackOutputConfig.accepts``): alias moves and rejected runs unless
        ``types`` names others; the delivery loop filters with the same rule."""
        return self._config.accepts(event.short_type, event.model, event.data)

    def send(self, event: OutgoingEvent) -> DeliveryResult:
        """POST the line of ``event`` (an event the output does not want counts as delivered, unsent)."""
        if not self.wants(event):
            return DeliveryResult("delivered", None)
        if self._missing is not None:
            return DeliveryResult("retry", self._missing)
        try:
            response = self._session.post(self._url, json={"text": self._text.render(event)},
                                          timeout=self._config.timeout_seconds)
        except requests.RequestException as exc:
            return DeliveryResult("retry", self._masked(f"{type(exc).__name__}: {exc}"))
        if 200 <= response.status_code < 300:
            return DeliveryResult("delivered", None)
        answer = self._masked(f"HTTP {response.status_code}: {response.text[:200].strip()}")
        if response.status_code in DISABLING_STATUSES:
            return DeliveryResult("disabled", answer)
        return DeliveryResult("retry", answer)

    def check(self) -> str | None:
        """A TCP (and TLS for https) connect to the webhook's host; nothing is posted."""
        if self._missing is not None:
            return self._missing
        error = reach(self._url, self._config.timeout_seconds)
        return self._masked(error) if error else None

    def close(self) -> None:
        self._session.close()

    def _masked(self, text: str) -> str:
        """``text`` with the webhook URL (and its path, alone or URL-encoded) masked."""
        parts = urlsplit(self._url)
        masked = f"{parts.scheme}://{parts.netloc}/***"
        for part in (self._url, parts.path, quote(parts.path, safe="")):
            if part and part != "/":
                text = text.replace(part, masked if part == self._url else "/***")
        return redact(text)
