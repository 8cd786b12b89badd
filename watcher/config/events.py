"""Configuration of outgoing events (issue 28): the ``events`` block, its ``source`` and its outputs.

Each output is one of ``http`` (CloudEvents binary mode, Standard Webhooks signature), ``nats``
(JetStream) or ``slack`` (an incoming webhook), chosen by its ``type`` (a discriminated union). The
fields every output shares (name, filters, retry and dead-letter) are in :class:`OutputBase`.
Secrets are ``SecretStr``: never logged or printed (the runtime also registers their values with
``watcher.obs.redact.add_secrets``: see :meth:`EventsConfig.secret_values`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from watcher.config.base import Strict

EVENT_TYPE_PREFIX = "io.registry-watcher."
SHORT_TYPES = ("run.decided", "alias.moved", "scoring.finished", "approval.changed")
DEFAULT_OUTBOX_PATH = "registry-watcher-events.sqlite"
_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class OutputBase(Strict):
    """What every output shares: its name, its filters, its retry and dead-letter settings."""

    name: str = Field(pattern=_NAME)
    """Unique name of the output (letters, digits, ``_ . -``): the key of its delivery state, so a
    renamed output is a new output that starts from the moment it is first seen."""
    types: list[str] | None = None
    """Short event types to send (``alias.moved``, ``run.decided``, ``scoring.finished``,
    ``approval.changed``); unset sends every type (Slack: alias moves and rejected runs only)."""
    models: list[str] | None = None
    """Registered model names to send events of; unset sends every model's events."""
    max_age_seconds: float = Field(86_400.0, gt=0)
    """Seconds from an event's first attempt after which it is dead-lettered and the next event of
    its model goes out; 24 h, as EventBridge retries, rides out a receiver's weekend-long outage
    only partly but never holds a model's stream back for longer than a day."""
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Seconds to wait for one attempt (connect + answer); 10 s, after which the attempt is retried."""
    retry_initial_seconds: float = Field(1.0, gt=0)
    """First retry delay in seconds (before jitter); 1 s rides out a blip without flooding."""
    retry_max_seconds: float = Field(300.0, gt=0)
    """Cap of the retry delay in seconds; 5 min keeps a dead receiver to ~12 attempts an hour."""
    retry_multiplier: float = Field(2.0, ge=1)
    """Growth factor of the delay per failed attempt; 2 is the usual doubling."""

    @model_validator(mode="after")
    def _known_types(self) -> OutputBase:
        for short in self.types or ():
            if short not in SHORT_TYPES:
                raise ValueError(f"types: unknown event type '{short}' (one of {', '.join(SHORT_TYPES)})")
        return self

    def retry_delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` (>= 1) failed ones: exponential, capped,
        with full jitter in its upper half (so many events of a dead receiver do not retry in step)."""
        base = min(self.retry_max_seconds, self.retry_initial_seconds * self.retry_multiplier ** max(0, failures - 1))
        return base * (0.5 + random.random() / 2)

    def accepts(self, short_type: str, model: str, data: Mapping[str, Any]) -> bool:  # noqa: ARG002 - Slack overrides
        """Whether this output sends an event of ``short_type`` about ``model`` (its filters)."""
        if self.models is not None and model not in self.models:
            return False
        return self.types is None or short_type in self.types


class HttpOutputConfig(OutputBase):
    """A POST per event in CloudEvents binary mode, signed the Standard Webhooks way."""

    type: Literal["http"] = "http"
    """The output type."""
    url: str = Field(pattern=r"^https?://")
    """The receiver's URL (``http://`` or ``https://``); a password in it is redacted in logs."""
    secret: SecretStr | None = None
    """Signing secret (``whsec_<base64>``, or any string, which is then used as the raw key); never
    logged or printed. Prefer ``secret_env``. Neither: the requests are not signed."""
    secret_env: str | None = None
    """Name of the environment variable holding the signing secret (read when the output starts)."""

    def secret_value(self) -> str | None:
        """The signing secret: ``secret``, else the variable named by ``secret_env``, else None."""
        if self.secret is not None:
            return self.secret.get_secret_value()
        return os.environ.get(self.secret_env) or None if self.secret_env else None


class NatsOutputConfig(OutputBase):
    """A JetStream publish per event on ``<subject>.<type suffix>.<model>``."""

    type: Literal["nats"] = "nats"
    """The output type."""
    url: str = Field(pattern=r"^(nats|tls|wss?)://")
    """The NATS server (``nats://host:4222``); a password in it is redacted in logs."""
    subject: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    """Subject prefix; events go to ``<subject>.alias.moved.<model>`` and so on."""
    stream: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """JetStream stream, created when missing, covering ``<subject>.>``."""


class SlackOutputConfig(OutputBase):
    """A Slack incoming webhook: one readable line per alias move and per rejected run."""

    type: Literal["slack"] = "slack"
    """The output type."""
    url: SecretStr | None = None
    """The incoming-webhook URL (``https://hooks.slack.com/services/...``): a secret, never logged or
    printed. Prefer ``url_env``; exactly one of the two is given."""
    url_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the webhook URL (read when the output starts), so the
    secret stays out of the config file; its value is redacted like ``url``."""

    @model_validator(mode="after")
    def _one_url(self) -> SlackOutputConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env (the webhook URL, or the variable holding it)")
        return self

    def url_value(self) -> str | None:
        """The webhook URL: ``url``, else the variable named by ``url_env`` (None while it is unset)."""
        if self.url is not None:
            return self.url.get_secret_value()
        return os.environ.get(self.url_env or "") or None

    def accepts(self, short_type: str, model: str, data: Mapping[str, Any]) -> bool:
        """Alias moves and rejected runs by default; a ``types`` list adds registered runs or scoring."""
        if self.models is not None and model not in self.models:
            return False
        if self.types is not None:
            return short_type in self.types
        return short_type == "alias.moved" or (short_type == "run.decided" and data.get("decision") == "rejected")


OutputConfig = Annotated[HttpOutputConfig | NatsOutputConfig | SlackOutputConfig, Field(discriminator="type")]


class EventsConfig(Strict):
    """Outgoing events: CloudEvents for every decision, alias move and scoring, to each output."""

    source: str | None = None
    """CloudEvents ``source`` of every event; unset derives ``registry-watcher/<tracking server>``
    (host, port and path, no credentials), the same on every replica, since consumers deduplicate on
    source plus id."""
    outputs: list[OutputConfig] = Field(default_factory=list)
    """Where events go; each output is delivered independently (its own order, retries and state)."""
    outbox_path: str = DEFAULT_OUTBOX_PATH
    """SQLite file of the outbox (the events owed and their delivery state) for a single replica;
    with ``ha``, the outbox is kept in the lock database instead and this is unused."""
    rederive_seconds: float = Field(86_400.0, ge=0)
    """At start-up, the facts of this many past seconds are read again from MLflow and appended
    when missing (idempotent by id): what a kill -9 between a fact and its append left out."""

    @model_validator(mode="after")
    def _unique_names(self) -> EventsConfig:
        names = [o.name for o in self.outputs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"outputs: duplicate name(s) {', '.join(duplicated)}")
        return self

    def output(self, name: str) -> HttpOutputConfig | NatsOutputConfig | SlackOutputConfig | None:
        """The output named ``name``, or None."""
        return next((o for o in self.outputs if o.name == name), None)

    def secret_values(self) -> list[str]:
        """Every secret of the block (signing secrets, Slack URLs, URL passwords), to redact."""
        values: list[str] = []
        for out in self.outputs:
            if isinstance(out, HttpOutputConfig):
                values += [v for v in (out.secret_value(), urlsplit(out.url).password) if v]
            elif isinstance(out, SlackOutputConfig):
                values += [v for v in (out.url_value(),) if v]
            else:
                values += [v for v in (urlsplit(out.url).password,) if v]
        return values


def default_source(tracking_uri: str | None) -> str:
    """``registry-watcher/<host[:port]/path>`` of the tracking server, credentials and query dropped
    (every replica of one fleet computes the same); a local store gives its path."""
    parts = urlsplit(tracking_uri or "")
    if parts.scheme in ("", "file") or parts.scheme.startswith("sqlite"):
        where = parts.path or tracking_uri or ""
    else:
        host = parts.hostname or ""
        where = f"{host}:{parts.port}{parts.path}" if parts.port else f"{host}{parts.path}"
    return f"registry-watcher/{where.strip('/')}"
