"""Typed, documented configuration, the foundation beside ``watcher.obs``.

A YAML file validated by nested pydantic models; every field has a docstring with its unit and
why its default is what it is. Split by concern: ``gates`` (the built-in gate registry and custom
handler gates), ``scoring`` (batch and Spark scoring), ``watch`` (one watched experiment),
``service`` (logs, ``ha``, ``http``), ``settings`` (the whole file and the precedence of the
environment over it) and ``loading`` (reading a file, errors with field locations).
"""

from watcher.config.approvals import ApprovalConfig, IdentityConfig, OidcConfig
from watcher.config.base import RetryConfig, Strict
from watcher.config.bulkheads import BulkheadConfig
from watcher.config.discover import DEFAULT_PROFILE, DiscoverConfig
from watcher.config.events import EventsConfig, HttpOutputConfig, NatsOutputConfig, SlackOutputConfig, default_source
from watcher.config.gates import (
    BUILTIN_GATES,
    DEFAULT_TRUSTED_TYPES,
    ChampionGate,
    CustomGate,
    DataGate,
    FeaturesGate,
    GateConfig,
    GateSpec,
    MetricGate,
    SafeSerializationGate,
    gate_keys,
)
from watcher.config.imports import import_callable
from watcher.config.loading import ConfigError, format_errors, load_config
from watcher.config.scoring import SPARK_EXTRA_HINT, ScoringConfig, SparkConfig, is_uri, scoring_inputs
from watcher.config.service import HaConfig, HttpConfig, LogConfig
from watcher.config.settings import (
    DEFAULT_AUDIT_EXPERIMENT,
    DEFAULT_TRACKING_URI,
    PRECEDENCE,
    WatcherConfig,
    env_overrides,
)
from watcher.config.watch import AliasPolicy, WatchConfig, WatchProfile

__all__ = [
    "BUILTIN_GATES",
    "DEFAULT_AUDIT_EXPERIMENT",
    "DEFAULT_PROFILE",
    "DEFAULT_TRACKING_URI",
    "DEFAULT_TRUSTED_TYPES",
    "PRECEDENCE",
    "SPARK_EXTRA_HINT",
    "AliasPolicy",
    "ApprovalConfig",
    "BulkheadConfig",
    "ChampionGate",
    "ConfigError",
    "CustomGate",
    "DataGate",
    "DiscoverConfig",
    "EventsConfig",
    "FeaturesGate",
    "GateConfig",
    "GateSpec",
    "HaConfig",
    "HttpConfig",
    "HttpOutputConfig",
    "IdentityConfig",
    "LogConfig",
    "MetricGate",
    "NatsOutputConfig",
    "OidcConfig",
    "RetryConfig",
    "SafeSerializationGate",
    "ScoringConfig",
    "SlackOutputConfig",
    "SparkConfig",
    "Strict",
    "WatchConfig",
    "WatchProfile",
    "WatcherConfig",
    "default_source",
    "env_overrides",
    "format_errors",
    "gate_keys",
    "import_callable",
    "is_uri",
    "load_config",
    "scoring_inputs",
]
