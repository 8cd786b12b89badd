"""Loading a config file: YAML, paths made absolute against the file's folder, validation with
every error named by its field location (``watches.0.gates.2.min: Input should be a valid number``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from watcher.config.scoring import ScoringConfig, is_uri
from watcher.config.settings import DEFAULT_TRACKING_URI, WatcherConfig


class ConfigError(Exception):
    """The config file is missing or invalid; the message names each bad field's location."""


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative sqlite URIs and scoring paths absolute against the config folder."""
    uri = raw.get("tracking_uri")
    if isinstance(uri, str) and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        raw["tracking_uri"] = "sqlite:///" + str(base / uri[len("sqlite:///"):])
    profiles = raw.get("profiles")
    blocks = list(raw.get("watches") or []) + (list(profiles.values()) if isinstance(profiles, dict) else [])
    for watch in blocks:
        scoring = watch.get("scoring") if isinstance(watch, dict) else None
        if isinstance(scoring, dict):
            scoring.setdefault("output_dir", ScoringConfig.model_fields["output_dir"].default)
            for key in ("input", "output_dir"):
                value = scoring.get(key)
                if isinstance(value, str) and not os.path.isabs(value) and not is_uri(value):
                    scoring[key] = str(base / value)
    return raw


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
    # the embedded default is a local store beside the file; the environment still outranks it
    raw.setdefault("tracking_uri", DEFAULT_TRACKING_URI)
    raw = _resolve_paths(raw, file.resolve().parent)
    try:
        return WatcherConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid config\n{format_errors(exc)}") from exc
