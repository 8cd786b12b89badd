"""Links into the MLflow UI for runs, versions and experiments (``ui_url`` in the config).

Unset, the base is the tracking URI without its credentials when that is an http(s) URL; a
tracking URI of another kind (``sqlite:///...``) gives no links. The base never carries a user or
a password, so a page never shows one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from watcher.config import WatcherConfig


def _without_credentials(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class UiLinks:
    """URLs of the MLflow UI; every method returns None when there is no UI to link to."""

    base: str | None

    @classmethod
    def from_config(cls, config: WatcherConfig) -> UiLinks:
        base = config.ui_url or config.tracking_uri
        return cls(_without_credentials(base) if base else None)

    def experiment_link(self, experiment_id: str | None) -> str | None:
        if self.base is None or not experiment_id:
            return None
        return f"{self.base}/#/experiments/{quote(experiment_id, safe='')}"

    def run_link(self, experiment_id: str | None, run_id: str) -> str | None:
        found = self.experiment_link(experiment_id)
        return None if found is None else f"{found}/runs/{quote(run_id, safe='')}"

    def version_link(self, model_name: str, version: str | None) -> str | None:
        if self.base is None or not version:
            return None
        return f"{self.base}/#/models/{quote(model_name, safe='')}/versions/{quote(str(version), safe='')}"

    def model_link(self, model_name: str) -> str | None:
        return None if self.base is None else f"{self.base}/#/models/{quote(model_name, safe='')}"
