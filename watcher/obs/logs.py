"""Structured logging: every line the process writes is one JSON object (or console text on a TTY).

Our events go through structlog; the standard-library logging of MLflow, APScheduler and the rest
is routed through the same ``ProcessorFormatter``; Python warnings are captured into logging; and
stray writes to ``sys.stdout`` / ``sys.stderr`` (progress bars, ``print``) become records of the
loggers ``stray.stdout`` / ``stray.stderr`` (the text is the event), so a log pipeline can parse all
of it. None of these foreign lines is a catalogued event. Every line passes
``watcher.redact.redact_event``, so no password or token reaches the log.

The watcher's own events are declared once in ``watcher.obs.events.CATALOGUE``;
:func:`get_logger` returns a :class:`CataloguedLogger`, which emits nothing else (strict under the
test suite, said and written as it came in production: see :data:`STRICT_EVENTS_ENV`).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from typing import Any, TextIO

import structlog

from watcher.obs.events import CATALOGUE
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
    log = get_logger("watcher")

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        log.critical("uncaught_exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)  # type: ignore[arg-type]


STRICT_EVENTS_ENV = "REGISTRY_WATCHER_STRICT_EVENTS"
"""Set to ``1`` (the test suite does): an event missing from the catalogue raises
:class:`UncataloguedEvent`. Unset (production): the event is written as it came, and one
``uncatalogued_event`` error per name says so; no line is lost."""
_said_uncatalogued: set[str] = set()


class UncataloguedEvent(ValueError):
    """An event name that ``watcher.obs.events.CATALOGUE`` does not declare (strict mode only)."""


class CataloguedLogger:
    """A structlog logger that emits only the events of :data:`watcher.obs.events.CATALOGUE`.

    The same methods as structlog's (``debug`` ... ``critical``, ``exception``); each call is
    passed on unchanged, so processors, context and level filtering are structlog's."""

    __slots__ = ("_logger",)

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("debug", event, args, kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("info", event, args, kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("warning", event, args, kw)

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("error", event, args, kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("critical", event, args, kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("exception", event, args, kw)

    def _emit(self, method: str, event: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if event not in CATALOGUE:
            if os.environ.get(STRICT_EVENTS_ENV) == "1":
                raise UncataloguedEvent(f"log event {event!r} is not declared in watcher.obs.events.CATALOGUE")
            if event not in _said_uncatalogued:
                _said_uncatalogued.add(event)
                self._logger.error("uncatalogued_event", event_name=event,
                                   hint="declare it in watcher.obs.events; the event itself is written as it came")
        getattr(self._logger, method)(event, *args, **kw)


def get_logger(name: str = "watcher") -> CataloguedLogger:
    """A structlog logger that emits only catalogued events (``watcher.obs.events``); bind
    ``run_id``/``model_name``/``version`` with contextvars."""
    return CataloguedLogger(structlog.get_logger(name))
