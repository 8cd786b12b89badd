"""Configuration of the running process: log output, leader election (``ha``) and the HTTP server."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watcher.config.base import Strict


class LogConfig(Strict):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Minimum level; INFO shows every decision without MLflow's debug chatter."""
    format: Literal["auto", "json", "console"] = "auto"
    """auto = JSON lines when stdout is not a TTY, the console renderer on a TTY."""


class HaConfig(Strict):
    """Leader election: with this block, only the replica holding a PostgreSQL advisory lock acts."""

    lock_url: str = Field(pattern=r"^postgres(ql)?://")
    """``postgresql://user[:password]@host:5432/db``; any database all replicas reach (the password is
    redacted in logs). One session advisory lock per registered model, keyed on a hash of its name."""
    connect_timeout_seconds: int = Field(5, ge=1)
    """Seconds to wait for the lock connection; short, since a standby retries every poll anyway."""
    keepalives_idle_seconds: int = Field(10, ge=1)
    """Idle seconds before TCP keepalive probes start, so a dead peer is noticed in ~25 s, not hours."""
    keepalives_interval_seconds: int = Field(5, ge=1)
    """Seconds between unanswered keepalive probes."""
    group: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    """Replicas of one fleet: only replicas of the same group share the models among themselves, so
    another group's watchers (or a benchmark) on the same lock database never shrink this fleet's
    shares. Up to 32 letters, digits, ``_ . -`` (it goes into the lock session's application_name)."""
    keepalives_count: int = Field(3, ge=1)
    """Unanswered probes before the kernel drops the connection (and PostgreSQL frees the lock)."""


class HttpConfig(Strict):
    """The HTTP server of ``registry-watcher run``: health, readiness, metrics, MLflow webhooks."""

    host: str = "0.0.0.0"
    """Interface to bind; all interfaces by default, since in a container the orchestrator probes it."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port; 8080 is the usual unprivileged port for a sidecar-style service (0 = any free port)."""
    webhook_secret: SecretStr | None = None
    """Shared secret of the MLflow webhook (HMAC-SHA256); also ``$WATCHER_HTTP__WEBHOOK_SECRET``.
    Never logged or printed. Unset: ``POST /webhooks/mlflow`` is not served (404)."""
    webhook_tolerance_seconds: float = Field(300.0, gt=0, le=3600)
    """Accepted age (and clock skew into the future) of a delivery's timestamp, in seconds; 5 min,
    as in the Standard Webhooks convention MLflow follows, bounds replays of a captured request."""
    max_body_bytes: int = Field(1_048_576, gt=0)
    """Largest webhook body accepted, in bytes; 1 MiB is far above MLflow's payloads (< 1 KiB)."""
    liveness_seconds: float | None = Field(None, gt=0)
    """``/healthz`` fails when the poll loop has not run for this many seconds (and no poll is in
    progress); unset means max(3 x poll_interval_seconds, 30 s), tolerant of a slow tick."""
    tls_certfile: str | None = None
    """PEM certificate (chain) served over HTTPS; with ``tls_keyfile``. Required off loopback when approvals
    are on (the API carries passwords and tokens), unless ``allow_insecure``."""
    tls_keyfile: str | None = None
    """PEM private key of ``tls_certfile``."""
    allow_insecure: bool = False
    """Serve the approvals API over plain HTTP off loopback anyway (a warning at every start); for a
    TLS-terminating proxy in front."""
    console: bool = True
    """Serve the console (``/``, ``/models/<name>``, ``/runs/<id>``: read-only pages of the fleet);
    ``false`` turns the pages off while the API, the probes and ``/metrics`` stay."""


