"""Structured logging: every line the process writes is one JSON object (or console text on a TTY).

Our events go through structlog; the standard-library logging of MLflow, APScheduler and the rest
is routed through the same ``ProcessorFormatter``; Python warnings are captured into logging; and
stray writes to ``sys.stdout`` / ``sys.stderr`` (progress bars, ``print``) are wrapped as
``stray_output`` events, so a log pipeline can parse all of it. Every line passes
``watcher.redact.redact_event``, so no password or token reaches the log.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import Any, TextIO

import structlog

from watcher.obs.redact import redact_event, secrets_from_env

_QUIET = {"alembic": logging.WARNING, "urllib3": logging.WARNING, "apscheduler": logging.WARNING,
          "git": logging.WARNING, "matplotlib": logging.WARNING, "py4j": logging.WARNING}


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        redact_event,
    ]


class _LineStream(io.TextIOBase):
    """A text stream that turns each written line into a log event (catch-all for stray output)."""

    def __init__(self, name: str, original: TextIO) -> None:
        self.original = original
        self._log = logging.getLogger(f"stray.{name}")
        self._buffer = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text.replace("\r", "\n")
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._log.info(line.rstrip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._buffer = self._buffer, ""
        if line.strip():
            self._log.info(line.rstrip())

    def isatty(self) -> bool:
        return False


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None,
                      capture_stray_output: bool = False) -> None:
    """Configure structlog and stdlib logging to write to ``stream`` (default stdout).

    ``fmt`` is ``json``, ``console`` or ``auto`` (JSON unless the stream is a TTY).
    ``capture_stray_output`` also wraps ``sys.stdout``/``sys.stderr`` so nothing bypasses JSON.
    """
    stream = stream or sys.stdout
    secrets_from_env()
    while isinstance(stream, _LineStream):  # never log into our own wrapper
        stream = stream.original
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (structlog.processors.JSONRenderer() if use_json
                     else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # tracebacks as text, so they are redacted too
            redact_event,  # type: ignore[list-item]  # structlog's stub wants MutableMapping; a dict is one
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))
    for name in ("mlflow", "py.warnings"):
        lib = logging.getLogger(name)
        lib.handlers = []
        lib.propagate = True
    logging.captureWarnings(True)
    if capture_stray_output:
        if not isinstance(sys.stdout, _LineStream):
            sys.stdout = _LineStream("stdout", sys.stdout)
        if not isinstance(sys.stderr, _LineStream):
            sys.stderr = _LineStream("stderr", sys.stderr)
        _install_excepthooks()


def _install_excepthooks() -> None:
    log = structlog.get_logger("watcher")

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        log.critical("uncaught_exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)  # type: ignore[arg-type]


def get_logger(name: str = "watcher") -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind ``run_id``/``model_name``/``version`` with contextvars."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
