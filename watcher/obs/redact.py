"""Secrets never reach a log line or the CLI's output: redaction in one place.

Two kinds of secret are hidden in every string value of every event (and in rendered tracebacks):

* the password of any ``scheme://user:password@host`` URL, anywhere in the text (MLflow's own
  exceptions embed the request URL, credentials included);
* the literal values of known secrets: ``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_PASSWORD`` and
  ``WATCHER_HTTP__WEBHOOK_SECRET`` from the environment (read when logging is configured), plus the
  passwords of the configured URIs (tracking, registry, ``ha.lock_url``) once the config is loaded.

``redact_event`` is a structlog processor, placed in the shared chain (our events and foreign
stdlib records alike) and again after ``format_exc_info``. ``redact`` is used by the CLI's printer.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "WATCHER_HTTP__WEBHOOK_SECRET")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<password>[^\s@/'\"]+)@")
_MIN_SECRET = 4  # shorter literals would mask ordinary words; URL passwords are caught by the pattern
_secrets: set[str] = set()
_lock = threading.Lock()


def add_secrets(values: Iterable[str | None]) -> None:
    """Remember literal secret values (and their URL-decoded forms) to mask from now on."""
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                _secrets.add(value)
                _secrets.add(unquote(value))


def secrets_from_env() -> None:
    """Read the secret environment variables (called when logging is configured)."""
    add_secrets(os.environ.get(name) for name in SECRET_ENV)


def uri_password(uri: str | None) -> str | None:
    """The password of ``scheme://user:password@host``, or None."""
    if not uri or "@" not in uri:
        return None
    try:
        return urlsplit(uri).password
    except ValueError:
        return None


def redact(text: str) -> str:
    """``text`` with URL passwords and every known secret replaced by ``***``."""
    if not isinstance(text, str) or not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def redact_event(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every string value of the event (recursively)."""
    for key, value in event.items():
        if key in ("exc_info", "_record", "_from_structlog"):
            continue
        event[key] = _clean(value)
    return event
