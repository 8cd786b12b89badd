"""Loading a config file: YAML, paths made absolute against the file's folder, validation with
every error named by its field location (``watches.0.gates.2.min: Input should be a valid number``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from watcher.config.profiles import ProfileError, resolve_extends
from watcher.config.scoring import ScoringConfig, is_uri
from watcher.config.settings import DEFAULT_TRACKING_URI, WatcherConfig

NO_TRACKING_URI = ("tracking_uri: not set: give tracking_uri in the file, or $WATCHER_TRACKING_URI or "
                   "$MLFLOW_TRACKING_URI (no local store is made by default; for one: tracking_uri: "
                   f"{DEFAULT_TRACKING_URI}, beside the file)")


_LOCATED = re.compile(r"^[\w.\-]+: ")


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
    """One line per error: ``location: message``; a whole-file check that names its own location
    (``watches.0.experiment: ...``) is printed as that location."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = str(err["msg"])
        located = msg.removeprefix("Value error, ")
        if not loc and located != msg and _LOCATED.match(located):
            lines.append(located)
        else:
            lines.append(f"{loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str], *, need_tracking_uri: bool = True) -> WatcherConfig:
    """Read, resolve and validate a config file; raise :class:`ConfigError` with field locations.

    Without a tracking URI (file or environment) it is an error, unless ``need_tracking_uri`` is
    False (``check-config --offline``: the schema only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file not found: {file} (pass --config FILE)")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys")
    try:
        raw = resolve_extends(raw)  # before the paths: a child's partial scoring block takes its base's
    except ProfileError as exc:
        raise ConfigError(f"{file}: invalid config\n{exc}") from exc
    raw = _resolve_paths(raw, file.resolve().parent)
    try:
        config = WatcherConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: invalid config\n{format_errors(exc)}") from exc
    if need_tracking_uri and not config.tracking_uri:
        raise ConfigError(f"{file}: invalid config\n{NO_TRACKING_URI}")
    return config
