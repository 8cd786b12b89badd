"""MLflow webhooks: verify a delivery exactly as MLflow signs it, decide what it asks for, install.

MLflow (3.3+, ``mlflow/webhooks/delivery.py``) sends ``POST`` with the headers
``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (Unix seconds) and
``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery_id>.<timestamp>.<body>")>``,
and a JSON body ``{"entity", "action", "timestamp", "data": {...}}``.

:class:`Receiver` is the whole receiving side without HTTP (``watcher.http`` adapts it): a stale
or future timestamp is 400, a missing or wrong signature 401, and neither changes anything. A
valid delivery is 200; one for a watched model's production alias (or its staging alias under a
``staging_policy`` other than ``record``) asks the daemon for a tick at once (the tick settles the
alias under its policy and fires scoring; the poll stays the backstop, and the
scoring's ``seq`` key keeps it once per change whichever comes first). A delivery id seen before
is answered 200 and does nothing more. Installing the webhook is ``watcher.store.webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.production import polices_staging
from watcher.obs.logs import get_logger

log = get_logger("watcher.webhooks")

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
SEEN_IDS = 4096


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery (also used by the tests)."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_valid(secret: str, delivery_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Constant-time check of ``header`` (one or more space-separated ``v1,<b64>``) for this body."""
    expected = sign(secret, delivery_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in header.split() if candidate)


@dataclass(frozen=True)
class Outcome:
    """The HTTP answer to one delivery: status code and a small JSON body (never the secret)."""

    status: int
    detail: str
    tick_requested: bool = False


class Receiver:
    """Verifies deliveries and turns the relevant ones into ``request_tick`` calls; thread-safe."""

    def __init__(self, config: WatcherConfig, request_tick: Callable[[str], None],
                 clock: Callable[[], float] = time.time,
                 watches: Callable[[], Sequence[WatchConfig]] | None = None) -> None:
        assert config.http is not None and config.http.webhook_secret is not None
        self._secret = config.http.webhook_secret.get_secret_value()
        self._tolerance = config.http.webhook_tolerance_seconds
        self._watches = watches or (lambda: config.watches)
        """The effective watch set (discovery changes it), read at each delivery."""
        self._request_tick = request_tick
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def handle(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Verify and act on one delivery; ``headers`` keys are lower case."""
        delivery_id = headers.get(DELIVERY_ID_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        if not delivery_id or not timestamp:
            return self._refuse(400, "missing delivery id or timestamp header", delivery_id)
        try:
            age = self._clock() - int(timestamp)
        except ValueError:
            return self._refuse(400, "timestamp is not an integer", delivery_id)
        if abs(age) > self._tolerance:
            return self._refuse(400, "timestamp outside the accepted window", delivery_id, age_seconds=round(age))
        if not signature:
            return self._refuse(401, "missing signature", delivery_id)
        if not signature_valid(self._secret, delivery_id, timestamp, body, signature):
            return self._refuse(401, "invalid signature", delivery_id)
        try:
            payload = json.loads(body)
            entity, action = payload["entity"], payload["action"]
            data = payload.get("data") or {}
        except (ValueError, KeyError, TypeError):
            return self._refuse(400, "body is not an MLflow webhook payload", delivery_id)
        with self._lock:
            if delivery_id in self._seen:
                self._seen.move_to_end(delivery_id)
                log.debug("webhook_duplicate", delivery_id=delivery_id)
                return Outcome(200, "duplicate delivery")
            self._seen[delivery_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        model = data.get("name") if isinstance(data, dict) else None
        alias = data.get("alias") if isinstance(data, dict) else None
        relevant = (entity == "model_version_alias" and isinstance(model, str)
                    and alias in self.watched().get(model, ()))
        log.info("webhook_received", delivery_id=delivery_id, entity=entity, action=action, model_name=model,
                 alias=alias, version=data.get("version") if isinstance(data, dict) else None,
                 tick_requested=relevant)
        if relevant:
            self._request_tick(f"webhook:{entity}.{action}")
        return Outcome(200, "tick requested" if relevant else "accepted", relevant)

    def watched(self) -> dict[str, set[str]]:
        """Model -> its aliases a delivery may concern: production always; staging when policed."""
        found: dict[str, set[str]] = {}
        for w in self._watches():
            aliases = found.setdefault(w.model_name, set())
            aliases.add(w.production_alias)
            if polices_staging(w):
                aliases.add(w.staging_alias)
        return found

    @staticmethod
    def _refuse(status: int, reason: str, delivery_id: str, **extra: object) -> Outcome:
        log.warning("webhook_refused", status=status, reason=reason, delivery_id=delivery_id or None, **extra)
        return Outcome(status, reason)
