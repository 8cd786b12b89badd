"""The CLI's printer: everything it prints passes the redaction (``watcher.obs.redact``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from watcher.obs.redact import redact


def say(text: str, file: TextIO | None = None) -> None:
    """Print ``text`` (redacted) to ``file``, default stdout."""
    print(redact(text), file=file or sys.stdout)


def _stderr() -> TextIO:
    """The process's stderr, past the daemon verbs' capture of stray output (``watcher.obs.logs``
    wraps it and keeps the real stream as ``original``): an error stays an ``error:`` line on stderr."""
    stream = sys.stderr
    original = getattr(stream, "original", None)
    return original if original is not None else stream


def say_error(text: str) -> None:
    """``error: <text>`` on stderr, on one line (a multi-line text is joined with ``; ``)."""
    say("error: " + "; ".join(line.strip() for line in text.splitlines() if line.strip()), file=_stderr())


def say_errors(lines: Sequence[str], as_json: bool = False) -> None:
    """One ``error:`` line per item on stderr; with ``as_json`` one JSON object instead,
    ``{"error": first, "errors": [...]}`` (the output of a ``--json`` verb stays JSON)."""
    if as_json:
        say(json.dumps({"error": lines[0] if lines else "", "errors": list(lines)}), file=_stderr())
        return
    for line in lines:
        say_error(line)
