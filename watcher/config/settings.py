"""The whole configuration and where each value comes from.

Precedence, highest first (the twelve-factor convention): ``WATCHER_<KEY>`` environment variables
(nested with ``__``, e.g. ``WATCHER_HTTP__PORT``), then ``$MLFLOW_TRACKING_URI`` for the tracking
URI only, then the config file, then the defaults below. :data:`PRECEDENCE` says so in words, for
``check-config`` and the docs (``docs/reference/configuration.md``, whose key reference is generated
from this schema).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watcher.config.approvals import IdentityConfig, approval_setup_problem
from watcher.config.base import RetryConfig
from watcher.config.bulkheads import BulkheadConfig
from watcher.config.discover import DiscoverConfig
from watcher.config.events import EventsConfig
from watcher.config.profiles import resolve_extends
from watcher.config.service import HaConfig, HttpConfig, LogConfig
from watcher.config.watch import WatchConfig, WatchProfile

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""The local store the docs suggest for a first try; never taken by default (it must be written)."""
DEFAULT_AUDIT_EXPERIMENT = "registry-watcher-audit"
ENV_PREFIX = "WATCHER_"
PRECEDENCE = ("WATCHER_<KEY> environment variables (nested with __), then $MLFLOW_TRACKING_URI "
              "(tracking_uri only), then the config file, then the defaults")


class MlflowTrackingUri(PydanticBaseSettingsSource):
    """``$MLFLOW_TRACKING_URI`` as the ``tracking_uri``: below ``WATCHER_TRACKING_URI``, above the file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002 - base signature
        value = os.environ.get("MLFLOW_TRACKING_URI") if field_name == "tracking_uri" else None
        return value or None, field_name, False

    def __call__(self) -> dict[str, Any]:
        value = os.environ.get("MLFLOW_TRACKING_URI")
        return {"tracking_uri": value} if value else {}


class WatcherConfig(BaseSettings):
    """The whole file. The environment overrides it (see :func:`settings_customise_sources`)."""

    model_config = SettingsConfigDict(
        env_prefix="WATCHER_", env_nested_delimiter="__", extra="forbid",
        use_attribute_docstrings=True, frozen=True,
    )

    tracking_uri: str | None = Field(None, min_length=1)
    """MLflow tracking URI: ``$WATCHER_TRACKING_URI``, else ``$MLFLOW_TRACKING_URI``, else the file.
    No default: every command but ``check-config --offline`` refuses to start without one (a silent
    local ``mlflow.db`` in the working folder helped nobody); a local store is
    ``tracking_uri: sqlite:///mlflow.db`` (beside the file)."""
    registry_uri: str | None = None
    """Model registry URI if it differs from the tracking URI; unset means the same server."""
    poll_interval_seconds: float = Field(10.0, gt=0)
    """Seconds between polls; 10 s is fast for humans and ~3 requests per watch per poll."""
    page_size: int = Field(200, gt=0, le=50_000)
    """Runs per ``search_runs`` page; 200 keeps one response small while a backlog pages through."""
    cursor_overlap_seconds: float = Field(300.0, ge=0)
    """Re-read window behind the cursor (s), for runs whose client clock lagged; cost ~ runs in it."""
    retry: RetryConfig = RetryConfig()
    """Backoff after a failed poll (server down, 5xx, timeout); the daemon never exits on those."""
    log: LogConfig = LogConfig()
    """Log level and renderer."""
    max_run_attempts: int = Field(5, ge=1)
    """Failed attempts (count, kept in the run's ``watcher.attempts`` tag, so restarts keep it) before a
    run that keeps failing for a reason not its own is decided ``error``; 5 polls ride out blips."""
    workers: int = Field(4, ge=1, le=32)
    """Runs of one page decided in parallel (threads; the MLflow client is request-based). A burst
    drains ~2-3x faster than one at a time; staging still moves once per page, to the newest run."""
    ha: HaConfig | None = None
    """Leader election for two or more replicas; unset means run exactly one replica."""
    watches: list[WatchConfig] = Field(default_factory=list)
    """The experiments to watch; at least one unless ``discover`` finds them. An entry wins over a
    discovered watch of the same experiment."""
    discover: DiscoverConfig | None = None
    """Onboarding by experiment tag: experiments carrying ``discover.tag`` are watched too, found
    again every ``discover.interval_seconds`` with no restart; unset watches only ``watches``."""
    profiles: dict[str, WatchProfile] = Field(default_factory=dict)
    """Profile name -> a watch block without ``experiment`` and ``model_name`` (validated here like
    a watch), for discovered watches; an experiment without a profile tag takes ``default``."""
    audit_experiment: str = Field(DEFAULT_AUDIT_EXPERIMENT, min_length=1)
    """Experiment holding one run per alias move (the audit trail); a named default so every
    watcher, CLI and daemon alike, writes to the same place. It may not be a watched experiment."""
    http: HttpConfig | None = None
    """HTTP endpoints of ``run`` (health, readiness, metrics, webhooks); unset serves nothing."""
    # ---- issue 26 (fleet II, F2): bulkheads ----
    bulkheads: BulkheadConfig = BulkheadConfig()
    """A watch that fails on its own is held out and probed on its own backoff; the tracking server's
    ``/health`` is probed during an outage (see the block)."""
    # ---- issue 27 (approvals): identity ----
    identity: IdentityConfig = IdentityConfig()
    """How the daemon verifies people calling its approvals API besides MLflow logins (OIDC); empty by default."""
    # ---- issue 28 (outgoing events): events ----
    events: EventsConfig | None = None
    """Outgoing events (CloudEvents to HTTP, NATS JetStream, Slack), at least once, in order; unset sends none."""
    # ---- issue 29 (console): ui_url ----
    ui_url: str | None = None
    """Base URL of the MLflow UI the console links to (runs, versions, experiments); unset means the
    tracking URI without its credentials when that is an http(s) URL, else no links."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env or secrets files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env or secrets files
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence, highest first: ``WATCHER_*`` variables, ``$MLFLOW_TRACKING_URI`` (for
        ``tracking_uri`` only), the file (passed as init arguments), the field defaults. Nested keys
        merge, so ``WATCHER_HTTP__PORT`` overrides only the port of the file's ``http`` block."""
        return env_settings, MlflowTrackingUri(settings_cls), init_settings

    @model_validator(mode="before")
    @classmethod
    def _profiles_extend(cls, data: Any) -> Any:
        return resolve_extends(data)  # profiles (and watches) that extend a profile: its keys under theirs

    @model_validator(mode="after")
    def _scoring_not_watched(self) -> WatcherConfig:
        if not self.watches and self.discover is None:
            raise ValueError("watches: at least one watch is needed without a discover block")
        watched = {w.experiment for w in self.watches}
        if (problem := approval_setup_problem(list(self.watches), list(self.profiles.values()), self.http)) is not None:
            raise ValueError(problem)
        for i, watch in enumerate(self.watches):
            if watch.experiment == self.audit_experiment:
                raise ValueError(f"watches.{i}.experiment: '{watch.experiment}' is the audit_experiment")
            if watch.scoring_experiment in watched:
                raise ValueError(
                    f"watches.{i}.scoring.experiment: '{watch.scoring_experiment}' is a watched "
                    "experiment; scoring runs would become candidates"
                )
        return self

    def watch_for(self, model_name: str) -> WatchConfig | None:
        """The first watch of ``model_name``, or None."""
        return next((w for w in self.watches if w.model_name == model_name), None)


def env_overrides() -> list[str]:
    """The ``WATCHER_*`` variables set now, as config keys (``http.port``), for ``check-config``."""
    names = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k != ENV_PREFIX)
    return [k[len(ENV_PREFIX):].lower().replace("__", ".") for k in names]
