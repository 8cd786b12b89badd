"""The CLI's client of the daemon's HTTP API (approvals, event redelivery and replay, watch states).

The URL is ``$REGISTRY_WATCHER_API_URL`` where set, else the config's ``http`` block: its host (``127.0.0.1``
when the daemon binds ``0.0.0.0`` or ``::``) and port, ``https`` when the block configures TLS
(``tls_certfile``), trusting ``$REGISTRY_WATCHER_CA_BUNDLE`` where set. Plain ``urllib``: no MLflow import,
so verbs that only talk to the daemon start fast. The caller's own credentials go in ``headers``; nothing
here adds any.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from watcher.config import WatcherConfig

API_URL_ENV = "REGISTRY_WATCHER_API_URL"
CA_BUNDLE_ENV = "REGISTRY_WATCHER_CA_BUNDLE"


class ApiUnavailable(RuntimeError):
    """No API to call: no URL configured, or the daemon does not answer."""


@dataclass(frozen=True)
class ApiResponse:
    """One answer of the daemon's API: the status code and the decoded JSON body (None when empty or not JSON)."""

    status: int
    body: Any

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The error's reason as the API states it (``{"detail": ...}``), else the body as text."""
        if isinstance(self.body, dict) and "detail" in self.body:
            return str(self.body["detail"])
        return "" if self.body is None else json.dumps(self.body)


def api_url(config: WatcherConfig) -> str:
    """Base URL of the daemon's API (no trailing slash); raises :class:`ApiUnavailable` when none is known."""
    explicit = os.environ.get(API_URL_ENV, "").strip()
    if explicit:
        return explicit.rstrip("/")
    http = config.http
    if http is None:
        raise ApiUnavailable(f"no daemon API: set ${API_URL_ENV} or an http block in the config")
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if getattr(http, "tls_certfile", None) else "http"
    return f"{scheme}://{host}:{http.port}"


def _ssl_context(url: str) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    bundle = os.environ.get(CA_BUNDLE_ENV, "").strip()
    return ssl.create_default_context(cafile=bundle or None)


def api_request(config: WatcherConfig, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, timeout_s: float = 30.0) -> ApiResponse:
    """Call ``method path`` on the daemon's API; a 4xx or 5xx is returned, not raised.

    Raises :class:`ApiUnavailable` when no URL is known or the daemon does not answer (with the URL in
    the message, never a credential: the caller's credentials travel only in ``headers``).
    """
    base = api_url(config)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,  # noqa: S310 - the operator's own URL
                                     headers={"Accept": "application/json", **(headers or {}),
                                              **({"Content-Type": "application/json"} if data is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=_ssl_context(base)) as resp:  # noqa: S310
            return ApiResponse(resp.status, _decode(resp.read()))
    except urllib.error.HTTPError as exc:
        return ApiResponse(exc.code, _decode(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiUnavailable(f"the daemon's API at {base} does not answer: {reason}") from None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"detail": raw.decode(errors="replace")[:500]}
