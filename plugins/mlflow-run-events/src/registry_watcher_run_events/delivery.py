"""Signing and delivering run events, off the request path.

One bounded queue and one daemon thread per server process (created lazily and again after a
fork, since gunicorn ``--preload`` runs the factory before forking). ``submit`` never blocks: a
full queue drops the event and logs it (the watcher's poll is the backstop). Each delivery is one
POST per URL with a short timeout and a few retries on 429, 5xx and connection errors, with the
same delivery id, timestamp and signature on every retry, as MLflow's own webhook delivery does.
Failures are logged with the URL (its password, if any, masked) and never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

URLS_ENV = "REGISTRY_WATCHER_RUN_EVENTS_URL"
SECRET_ENV = "REGISTRY_WATCHER_RUN_EVENTS_SECRET"  # noqa: S105 - the variable's name, not a secret
TIMEOUT_ENV = "REGISTRY_WATCHER_RUN_EVENTS_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 2.0
RETRIES = 3
QUEUE_SIZE = 10_000
RETRY_STATUSES = (429, 500, 502, 503, 504)

log = logging.getLogger("registry_watcher_run_events")
_URL_PASSWORD = re.compile(r"(//[^/:@\s]*:)[^@/\s]+@")
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies from the environment


def urls() -> list[str]:
    """The receivers: ``$REGISTRY_WATCHER_RUN_EVENTS_URL``, comma-separated (empty: no delivery)."""
    return [u.strip() for u in os.environ.get(URLS_ENV, "").split(",") if u.strip()]


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """``X-MLflow-Signature``: ``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``, as MLflow signs."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()).decode()


def event(run_info: dict[str, Any]) -> bytes:
    """The JSON body of one run event."""
    return json.dumps({
        "entity": "run", "action": "finished", "timestamp": datetime.now(timezone.utc).isoformat(),
        "data": {"run_id": run_info.get("run_id"), "experiment_id": run_info.get("experiment_id"),
                 "status": run_info.get("status"), "end_time": _int_or_none(run_info.get("end_time"))},
    }).encode("utf-8")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def masked(url: str) -> str:
    """``url`` with a ``user:password@`` password replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def post(url: str, body: bytes, secret: str, timeout: float) -> int | None:
    """Deliver one event to one URL; the final HTTP status, or None when it never answered."""
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": stamp}
    if secret:
        headers["X-MLflow-Signature"] = sign(secret, delivery_id, stamp, body)
    status: int | None = None
    for attempt in range(RETRIES + 1):
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with _opener.open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            if exc.code not in RETRY_STATUSES:
                break
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            status, error = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < RETRIES:
            time.sleep(min(2.0**attempt * 0.5, 4.0))
    log.warning("registry-watcher run event to %s failed after %d attempts: %s", masked(url), RETRIES + 1,
                f"HTTP {status}" if status is not None else error)
    return status


class Sender:
    """The queue and its thread, in this process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.Queue[bytes] = queue.Queue(QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="registry-watcher-run-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            secret = os.environ.get(SECRET_ENV, "")
            timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)
            for url in urls():
                try:
                    post(url, body, secret, timeout)
                except Exception:
                    log.exception("registry-watcher run event delivery failed")


_sender: Sender | None = None
_lock = threading.Lock()


def submit(run_info: dict[str, Any]) -> None:
    """Queue an event for ``run_info`` (a RunInfo as JSON); never blocks, never raises."""
    global _sender
    if not urls():
        return
    with _lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = Sender()
        sender = _sender
    try:
        sender.queue.put_nowait(event(run_info))
    except queue.Full:
        log.warning("registry-watcher run event dropped (queue of %d full); the watcher's poll picks the run up",
                    QUEUE_SIZE)
