"""MLflow webhooks: verify a delivery exactly as MLflow signs it, decide what it asks for, install.

MLflow (3.3+, ``mlflow/webhooks/delivery.py``) sends ``POST`` with the headers
``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (Unix seconds) and
``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery_id>.<timestamp>.<body>")>``,
and a JSON body ``{"entity", "action", "timestamp", "data": {...}}``.

:class:`Receiver` is the whole receiving side without HTTP (``watcher.http`` adapts it): a stale
or future timestamp is 400, a missing or wrong signature 401, and neither changes anything. A
valid delivery whose body is not an MLflow payload (``Payload``, pydantic) is 400. A valid
delivery is 200; one for a watched model's production alias (or its staging alias under a
``staging_policy`` other than ``record``) asks the daemon for a tick at once (the tick settles the
alias under its policy and fires scoring; the poll stays the backstop, and the
scoring's ``seq`` key keeps it once per change whichever comes first). A delivery id seen within the
tolerance window is answered 200 and does nothing more. No signature headers at all is 401.
Installing the webhook is ``watcher.store.webhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine.production import polices_staging
from watcher.obs.logs import get_logger
from watcher.service.run_events import RunEventRouter

log = get_logger("watcher.webhooks")

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
TIMESTAMP = re.compile(r"-?[0-9]{1,12}")


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
class DeliveryOutcome:
    """The HTTP answer to one delivery: status code and a small JSON body (never the secret)."""

    status: int
    detail: str
    tick_requested: bool = False


class AliasData(BaseModel):
    """``data`` of a delivery: an alias event's ``name``/``alias``/``version`` and a run event's
    ``run_id``/``experiment_id``/``status`` (strings) and ``end_time`` (epoch ms), where present;
    other entities carry other fields."""

    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = None
    alias: StrictStr | None = None
    version: StrictStr | None = None
    run_id: StrictStr | None = None
    experiment_id: StrictStr | None = None
    status: StrictStr | None = None
    end_time: StrictInt | None = None


class Payload(BaseModel):
    """The JSON body MLflow sends (``mlflow/webhooks/delivery.py``); anything else is a 400."""

    model_config = ConfigDict(extra="allow")
    entity: StrictStr
    action: StrictStr
    timestamp: StrictStr
    data: AliasData


def parse_payload(body: bytes) -> Payload | None:
    """The validated payload, or None for anything that is not an MLflow webhook body."""
    try:
        return Payload.model_validate_json(body)
    except (ValidationError, ValueError):
        return None


class Receiver:
    """Verifies deliveries and turns the relevant ones into ``request_tick`` calls; thread-safe."""

    def __init__(self, config: WatcherConfig, request_tick: Callable[..., None],
                 clock: Callable[[], float] = time.time,
                 watches: Callable[[], Sequence[WatchConfig]] | None = None,
                 run_events: RunEventRouter | None = None) -> None:
        assert config.http is not None and config.http.webhook_secret is not None
        self._secret = config.http.webhook_secret.get_secret_value()
        self._tolerance = config.http.webhook_tolerance_seconds
        self._watches = watches or (lambda: config.watches)
        """The effective watch set (discovery changes it), read at each delivery."""
        self._request_tick = request_tick
        self._run_events = run_events
        """Which watches a run event (the MLflow server plugin's) concerns; None ignores run events."""
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        """delivery id -> until when it is kept: its timestamp plus the tolerance (a replay after
        that is refused as stale anyway), so no number of newer deliveries can push it out."""
        self._lock = threading.Lock()

    def handle(self, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        """Verify and act on one delivery; ``headers`` keys are lower case. Never raises."""
        delivery_id = headers.get(DELIVERY_ID_HEADER, "")
        refused = self._verify(delivery_id, headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, ""), body)
        if refused is not None:
            return refused
        payload = parse_payload(body)
        if payload is None:
            return self._refuse(400, "body is not an MLflow webhook payload", delivery_id)
        if not self._first_time(delivery_id, int(headers[TIMESTAMP_HEADER]) + self._tolerance):
            log.debug("webhook_duplicate", delivery_id=delivery_id)
            return DeliveryOutcome(200, "duplicate delivery")
        if payload.entity == "run":
            return self._run_event(delivery_id, payload)
        return self._alias_event(delivery_id, payload)

    def _verify(self, delivery_id: str, timestamp: str, signature: str, body: bytes) -> DeliveryOutcome | None:
        """The refusal of a delivery that is not MLflow's, signed with our secret, now; None when it is."""
        if not (delivery_id or timestamp or signature):
            return self._refuse(401, "missing signature headers", delivery_id)
        if not delivery_id or not timestamp:
            return self._refuse(400, "missing delivery id or timestamp header", delivery_id)
        if not TIMESTAMP.fullmatch(timestamp):
            return self._refuse(400, "timestamp is not an integer", delivery_id)
        age = self._clock() - int(timestamp)
        if abs(age) > self._tolerance:
            return self._refuse(400, "timestamp outside the accepted window", delivery_id, age_seconds=round(age))
        if not signature:
            return self._refuse(401, "missing signature", delivery_id)
        if not signature_valid(self._secret, delivery_id, timestamp, body, signature):
            return self._refuse(401, "invalid signature", delivery_id)
        return None

    def _alias_event(self, delivery_id: str, payload: Payload) -> DeliveryOutcome:
        """An alias event: a tick when it moves a watched model's production (or policed staging) alias."""
        data = payload.data
        relevant = (payload.entity == "model_version_alias" and data.name is not None
                    and data.alias in self.watched_aliases().get(data.name, ()))
        log.debug("webhook_received", delivery_id=delivery_id, entity=payload.entity, action=payload.action,
                  model_name=data.name, alias=data.alias, version=data.version, tick_requested=relevant)
        if relevant:
            self._request_tick(f"webhook:{payload.entity}.{payload.action}")
        return DeliveryOutcome(200, "tick requested" if relevant else "accepted", relevant)

    def _run_event(self, delivery_id: str, payload: Payload) -> DeliveryOutcome:
        """``run.finished`` (``plugins/mlflow-run-events``): a tick for the watches of that experiment only."""
        data = payload.data
        experiments: list[str] = []
        if (payload.action == "finished" and data.status == "FINISHED" and data.experiment_id
                and self._run_events is not None):
            experiments = self._run_events.experiments_for(data.experiment_id)
        log.debug("run_event_received", delivery_id=delivery_id, run_id=data.run_id, experiment_id=data.experiment_id,
                  status=data.status, experiments=experiments, tick_requested=bool(experiments))
        if experiments:
            self._request_tick("webhook:run.finished", experiments)
        return DeliveryOutcome(200, "tick requested" if experiments else "accepted", bool(experiments))

    def watched_aliases(self) -> dict[str, set[str]]:
        """Model -> its aliases a delivery may concern: production always; staging when policed."""
        found: dict[str, set[str]] = {}
        for w in self._watches():
            aliases = found.setdefault(w.model_name, set())
            aliases.add(w.production_alias)
            if polices_staging(w):
                aliases.add(w.staging_alias)
        return found

    def _first_time(self, delivery_id: str, keep_until: float) -> bool:
        """Remember ``delivery_id`` until ``keep_until``; False when it was seen and is still kept."""
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest, until = next(iter(self._seen.items()))
                if until >= now:
                    break
                del self._seen[oldest]
            if delivery_id in self._seen and self._seen[delivery_id] >= now:
                return False
            self._seen[delivery_id] = max(keep_until, self._seen.pop(delivery_id, keep_until))
            return True

    @staticmethod
    def _refuse(status: int, reason: str, delivery_id: str, **extra: object) -> DeliveryOutcome:
        log.warning("webhook_refused", status=status, reason=reason, delivery_id=delivery_id or None, **extra)
        return DeliveryOutcome(status, reason)
