"""Typed, documented configuration: a YAML file validated by nested pydantic models.

Every field has a one-line docstring (turned into its description) with its unit and why its
default is what it is. ``load_config`` raises :class:`ConfigError`, whose message names each bad
field by its location, for example ``watches.0.gates.2.min: Input should be a valid number``.
"""

from __future__ import annotations

import glob as globmod
import importlib.util
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from watcher.imports import import_callable

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
GATE_KEYS = ("metric", "features", "champion", "data", "safe_serialization", "handler")
DEFAULT_AUDIT_EXPERIMENT = "registry-watcher-audit"
DEFAULT_TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)
AliasPolicy = Literal["record", "alert", "revert"]


class ConfigError(Exception):
    """The config file is missing or invalid; the message names each bad field's location."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class MetricGate(_Strict):
    """Reject unless a run metric lies within [min, max]; a missing or NaN metric is a rejection."""

    metric: str
    """Run metric name, e.g. ``recall`` (recall first for churn: missing a churner costs most)."""
    min: float | None = None
    """Inclusive lower bound, unitless like the metric; unset means no lower bound."""
    max: float | None = None
    """Inclusive upper bound, unitless like the metric; unset means no upper bound."""

    @model_validator(mode="after")
    def _one_bound(self) -> MetricGate:
        if self.min is None and self.max is None:
            raise ValueError("a metric gate needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        return self


class FeaturesGate(_Strict):
    """Reject unless the model signature's input names are exactly this set."""

    features: list[str] = Field(min_length=1)
    """Expected input column names; order does not matter, extras and missing both reject."""


class ChampionGate(_Strict):
    """Challenger vs champion, with ``mlflow.models.MetricThreshold`` semantics."""

    champion: str
    """Metric compared with the run behind the production alias; no production version passes."""
    min_delta: float = 0.0
    """Minimum absolute improvement (metric units); 0.0 means 'not worse than the champion'."""
    min_relative_delta: float | None = None
    """Optional minimum relative improvement (0.05 = 5 %); unset because most teams gate on delta."""
    greater_is_better: bool = True
    """Direction of the metric; true for recall/precision/AUC, false for losses."""


class DataGate(_Strict):
    """Training-data alignment: the run's logged dataset input (``mlflow.log_input``)."""

    data: str | None
    """Required dataset name; null accepts any name (still checks columns)."""
    context: str | None = None
    """Required ``mlflow.data.context`` tag (e.g. ``training``); null accepts any context."""
    columns: list[str] = Field(default_factory=list)
    """Columns the dataset schema must contain; empty means no column check."""
    exact: bool = False
    """If true the schema must hold exactly ``columns`` (plus ``targets``), not a superset."""
    targets: list[str] = Field(default_factory=list)
    """Label columns, ignored by ``exact`` and ``match_signature``; e.g. ``[label]``."""
    match_signature: bool = False
    """If true the dataset's non-target columns must equal the model signature's inputs."""
    required: bool = True
    """If true a run with no matching dataset input is rejected; false lets it pass."""


class SafeSerializationGate(_Strict):
    """Reject a model whose flavor deserializes with pickle/cloudpickle (loading it runs code)."""

    safe_serialization: bool = True
    """True turns the gate on; false keeps it in the file but lets every model pass (e.g. a trial)."""
    trusted_types: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUSTED_TYPES))
    """Types a skops model may ask its loader to trust; the watcher owns this list, never the model.
    Default: what the seed's RandomForest needs (skops reports only ``sklearn.tree._tree.Tree``)."""


class CustomGate(BaseModel):
    """``{handler: "package.module:callable", ...kwargs}``; extra keys are passed as kwargs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    handler: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    """Import path ``package.module:callable``; checked at config load so typos fail early."""

    @field_validator("handler")
    @classmethod
    def _importable(cls, value: str) -> str:
        import_callable(value)
        return value

    @property
    def kwargs(self) -> dict[str, Any]:
        """The extra keys, passed to the callable as keyword arguments."""
        return dict(self.model_extra or {})


def _gate_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {MetricGate: "metric", FeaturesGate: "features", ChampionGate: "champion",
                DataGate: "data", SafeSerializationGate: "safe_serialization", CustomGate: "handler"}.get(type(value))
    if isinstance(value, dict):
        present = [key for key in GATE_KEYS if key in value]
        return present[0] if len(present) == 1 else None
    return None


GateConfig = Annotated[
    Union[
        Annotated[MetricGate, Tag("metric")],
        Annotated[FeaturesGate, Tag("features")],
        Annotated[ChampionGate, Tag("champion")],
        Annotated[DataGate, Tag("data")],
        Annotated[SafeSerializationGate, Tag("safe_serialization")],
        Annotated[CustomGate, Tag("handler")],
    ],
    Discriminator(
        _gate_kind,
        custom_error_type="unknown_gate",
        custom_error_message="unknown gate: give exactly one of metric, features, champion, data, safe_serialization, handler",
    ),
]


class RetryConfig(_Strict):
    """Exponential backoff for a failed poll or a failed scoring."""

    initial_seconds: float = Field(2.0, gt=0)
    """First delay in seconds; 2 s rides out a blip (each failed poll already spent MLflow's own retries)."""
    max_seconds: float = Field(30.0, gt=0)
    """Cap in seconds; 30 s means runs are registered within ~30 s of a server's return after any outage,
    while a dead server still costs only ~2 cheap requests a minute."""
    multiplier: float = Field(2.0, ge=1)
    """Growth factor per consecutive failure; 2 is the usual doubling."""

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
        return min(self.max_seconds, self.initial_seconds * self.multiplier ** max(0, failures - 1))


SPARK_EXTRA_HINT = 'pip install "registry-watcher[spark]"'


class SparkConfig(_Strict):
    """The Spark session used by ``scoring.engine: spark``; created once, lazily, on the first scoring."""

    master: str | None = None
    """Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``); unset: whatever
    ``SparkSession.builder`` picks up from the environment (spark-submit, Databricks-style launches)."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Spark properties passed to the session builder verbatim (e.g. ``spark.executor.memory: 4g``);
    empty by default because the cluster's own defaults usually fit."""
    env_manager: Literal["local", "virtualenv", "conda", "uv"] = "local"
    """``mlflow.pyfunc.spark_udf`` environment for the executors' model; ``local`` reuses the daemon's
    own interpreter (no per-model install); the others rebuild the model's logged environment."""


class ScoringConfig(_Strict):
    """Batch scoring fired when the production alias changes (the seed's deploy-model pattern)."""

    input: str
    """CSV or Parquet file, or a glob of them; relative paths resolve against the config folder."""
    output_dir: str = "predictions"
    """Folder for ``<model>/v<version>/predictions-<UTC>.parquet``; relative to the config folder."""
    experiment: str | None = None
    """Experiment for ``model_pattern_scoring`` runs; default ``<watched experiment>-scoring``."""
    format: Literal["parquet", "csv"] = "parquet"
    """Predictions file format; parquet keeps dtypes and is ~5x smaller than CSV."""
    chunk_rows: int = Field(100_000, gt=0)
    """Rows read and predicted per chunk; bounds memory (~100k rows x 8 cols is a few MB)."""
    handler: str | None = Field(None, pattern=r"^[\w.]+:[\w.]+$")
    """Custom scoring callable ``package.module:callable``; default is the built-in batch scorer."""
    retry: RetryConfig = RetryConfig(initial_seconds=60.0, max_seconds=3600.0)
    """Backoff for a failed scoring; 1 min to 1 h, since a bad input rarely fixes itself quickly."""
    engine: Literal["pandas", "spark"] = "pandas"
    """``pandas`` (chunked, one machine, no extra install) or ``spark`` (``mlflow.pyfunc.spark_udf``
    on a Spark session; needs the ``spark`` extra); pandas by default because most tables fit one machine."""
    spark: SparkConfig | None = None
    """Session settings for ``engine: spark``; unset means all defaults (master from the environment)."""

    @model_validator(mode="after")
    def _spark_engine(self) -> ScoringConfig:
        if self.engine != "spark":
            return self
        if importlib.util.find_spec("pyspark") is None:
            raise ValueError(f"scoring.engine 'spark' needs pyspark, which is not installed: {SPARK_EXTRA_HINT}")
        if self.format != "parquet":
            raise ValueError("scoring.engine 'spark' writes a Parquet dataset directory; set format: parquet")
        return self


class WatchConfig(_Strict):
    """One experiment watched for one registered model."""

    experiment: str = Field(min_length=1)
    """Experiment name to poll; it may not exist yet (a warning, and polling goes on)."""
    model_name: str = Field(min_length=1)
    """Registered model that passing runs become versions of; created when missing."""
    artifact_path: str = "model"
    """Name the model was logged under (LoggedModel name or run artifact folder)."""
    gates: list[GateConfig] = Field(default_factory=list)
    """Validation gates; all run, all reasons kept. The model-presence check is implicit."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Governance tags set verbatim on every registered version."""
    staging_alias: str = "staging"
    """Alias moved to the passing version whose run ended last."""
    production_alias: str = "production"
    """Alias read for the champion gate and for scoring; moved only by promote/rollback."""
    production_policy: AliasPolicy = "record"
    """A move of production not made by promote/rollback: ``record`` it (and score), ``alert`` (an
    error event too), or ``revert`` it. ``record`` by default: it was the behaviour before policies."""
    staging_policy: AliasPolicy = "record"
    """The same for the staging alias; ``record`` (the default) does not watch staging moves at all."""
    scoring: ScoringConfig | None = None
    """Optional batch scoring on production alias changes; unset disables scoring."""
    run_filter: str | None = None
    """MLflow search-runs filter (e.g. ``tags.candidate = 'true'``) ANDed with the watcher's own on
    the server; runs outside it are left alone. Unset takes every finished run of the experiment."""

    @field_validator("run_filter")
    @classmethod
    def _valid_filter(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from mlflow.utils.search_utils import SearchUtils

        try:
            SearchUtils.parse_search_filter(value)
        except Exception as exc:  # noqa: BLE001 - MLflow's parser raises MlflowException
            raise ValueError(f"not a valid MLflow search filter: {getattr(exc, 'message', exc)}") from None
        return value.strip()

    @property
    def scoring_experiment(self) -> str | None:
        """Name of the experiment where scoring runs go, or None without scoring."""
        if self.scoring is None:
            return None
        return self.scoring.experiment or f"{self.experiment}-scoring"


class LogConfig(_Strict):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Minimum level; INFO shows every decision without MLflow's debug chatter."""
    format: Literal["auto", "json", "console"] = "auto"
    """auto = JSON lines when stdout is not a TTY, the console renderer on a TTY."""


class HaConfig(_Strict):
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
    keepalives_count: int = Field(3, ge=1)
    """Unanswered probes before the kernel drops the connection (and PostgreSQL frees the lock)."""


class HttpConfig(_Strict):
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


class WatcherConfig(BaseSettings):
    """The whole file. Environment variables ``WATCHER_<FIELD>`` fill keys the file leaves out."""

    model_config = SettingsConfigDict(
        env_prefix="WATCHER_", env_nested_delimiter="__", extra="forbid",
        use_attribute_docstrings=True, frozen=True,
    )

    tracking_uri: str = Field(default_factory=lambda: os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)
    """MLflow tracking URI; else $MLFLOW_TRACKING_URI, else the embedded ``sqlite:///mlflow.db``."""
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
    watches: list[WatchConfig] = Field(min_length=1)
    """The experiments to watch; at least one."""
    audit_experiment: str = Field(DEFAULT_AUDIT_EXPERIMENT, min_length=1)
    """Experiment holding one run per alias move (the audit trail); a named default so every
    watcher, CLI and daemon alike, writes to the same place. It may not be a watched experiment."""
    http: HttpConfig | None = None
    """HTTP endpoints of ``run`` (health, readiness, metrics, webhooks); unset serves nothing."""

    @model_validator(mode="after")
    def _scoring_not_watched(self) -> WatcherConfig:
        watched = {w.experiment for w in self.watches}
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


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative sqlite URIs and scoring paths absolute against the config folder."""
    uri = raw.get("tracking_uri")
    if isinstance(uri, str) and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        raw["tracking_uri"] = "sqlite:///" + str(base / uri[len("sqlite:///"):])
    for watch in raw.get("watches") or []:
        scoring = watch.get("scoring") if isinstance(watch, dict) else None
        if isinstance(scoring, dict):
            scoring.setdefault("output_dir", ScoringConfig.model_fields["output_dir"].default)
            for key in ("input", "output_dir"):
                value = scoring.get(key)
                if isinstance(value, str) and not os.path.isabs(value) and not is_uri(value):
                    scoring[key] = str(base / value)
    return raw


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def is_uri(value: str) -> bool:
    """True for ``s3a://...``, ``hdfs://...``, ``dbfs:/...``, ``file:/...``: left as written, never made local."""
    return bool(_URI.match(value))


def format_errors(error: ValidationError) -> str:
    """One line per error: ``location: message``."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{loc}: {err['msg']}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str]) -> WatcherConfig:
    """Read, resolve and validate a config file; raise :class:`ConfigError` with field locations."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file not found: {file} (pass --config FILE)")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys")
    if "tracking_uri" not in raw and not os.environ.get("MLFLOW_TRACKING_URI"):
        raw["tracking_uri"] = DEFAULT_TRACKING_URI
    raw = _resolve_paths(raw, file.resolve().parent)
    try:
        return WatcherConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid config\n{format_errors(exc)}") from exc


def scoring_inputs(pattern: str) -> list[str]:
    """The files a scoring ``input`` names: the path itself, or the sorted matches of a glob."""
    if any(ch in pattern for ch in "*?["):
        return sorted(globmod.glob(pattern))
    return [pattern]
