"""The CLI's printer: everything it prints passes the redaction (``watcher.obs.redact``)."""

from __future__ import annotations

import sys
from typing import TextIO

from watcher.obs.redact import redact


def say(text: str, file: TextIO | None = None) -> None:
    """Print ``text`` (redacted) to ``file``, default stdout."""
    print(redact(text), file=file or sys.stdout)


def say_error(text: str) -> None:
    """``error: <text>`` on stderr."""
    say(f"error: {text}", file=sys.stderr)
