"""The ``http`` output: a POST per event in CloudEvents binary mode, signed the Standard Webhooks way.

Headers: the event's ``ce-*`` attributes and ``content-type: application/json`` (the data is the
body), and ``webhook-id`` (= the event id, so ``ce-id`` and ``webhook-id`` agree on every attempt),
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>`` computed by the
``standardwebhooks`` library over ``<id>.<timestamp>.<body>`` with a timezone-aware UTC time, again
at every attempt (receivers reject timestamps older than 5 minutes). A ``whsec_<base64>`` secret is
decoded as the library does; any other string is used as the raw key. No secret: no signature.

2xx is delivered; 410 disables the output (``events enable --output NAME``); anything else, or no
answer within ``timeout_seconds``, is a retry.
"""

from __future__ import annotations

import socket
import ssl
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from standardwebhooks import Webhook

from watcher.config.events import HttpOutputConfig
from watcher.events.model import DELIVERED, DeliveryResult, OutgoingEvent

USER_AGENT = "registry-watcher-events/1"
GONE = 410


def signer(secret: str | None) -> Webhook | None:
    """The Standard Webhooks signer of ``secret`` (``whsec_`` base64, else the raw string), or None."""
    if not secret:
        return None
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


class HttpOutput:
    """One HTTP receiver (a ``requests`` session: connections are kept between events)."""

    def __init__(self, config: HttpOutputConfig) -> None:
        self.name = config.name
        self._config = config
        self._signer = signer(config.secret_value())
        self._session = requests.Session()

    def headers(self, event: OutgoingEvent, now: datetime | None = None) -> tuple[dict[str, str], bytes]:
        """The request's headers (CloudEvents binary mode, Standard Webhooks) and body, signed at ``now``."""
        headers, body = event.binary()
        when = now or datetime.now(timezone.utc)
        headers.update({"webhook-id": event.id, "webhook-timestamp": str(int(when.timestamp())),
                        "user-agent": USER_AGENT})
        if self._signer is not None:
            headers["webhook-signature"] = self._signer.sign(event.id, when, body.decode())
        return headers, body

    def send(self, event: OutgoingEvent) -> DeliveryResult:
        """One POST; never raises."""
        headers, body = self.headers(event)
        try:
            answer = self._session.post(self._config.url, data=body, headers=headers,
                                        timeout=self._config.timeout_seconds, allow_redirects=False)
        except requests.RequestException as exc:
            return DeliveryResult("retry", f"{type(exc).__name__}: {exc}")
        if 200 <= answer.status_code < 300:
            return DELIVERED
        if answer.status_code == GONE:
            return DeliveryResult("disabled", f"HTTP 410 Gone from {self.name}")
        return DeliveryResult("retry", f"HTTP {answer.status_code}")

    def check(self) -> str | None:
        """A TCP (and, for https, TLS) connect to the receiver; None when it succeeds."""
        return reach(self._config.url, self._config.timeout_seconds)

    def close(self) -> None:
        self._session.close()


def reach(url: str, timeout: float) -> str | None:
    """Connect to ``url``'s host and port (a TLS handshake for https); the error, or None."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if tls else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if tls:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=host):
                    pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
