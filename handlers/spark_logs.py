"""Spark's JVM output (log4j lines, Java stack traces, Python workers' stderr) as JSON log events.

The JVM is a child process writing straight to the inherited stdout/stderr file descriptors, past
``watcher.logs``'s wrappers. :func:`forward_output` returns the write end of a pipe to hand to the
JVM's ``Popen`` (pyspark's ``launch_gateway(popen_kwargs=...)``); a daemon thread reads it and
logs one event per log4j record: ``yy/MM/dd HH:mm:ss LEVEL Logger: message`` becomes
``event=message``, ``logger=spark.<Logger>`` at the mapped level, with the lines that follow it
(a stack trace) as ``detail``. Any other line is an ``info`` event of logger ``spark.jvm``.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading

_HEAD = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ([^:\s]+): ?(.*)$")
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
_IDLE_FLUSH_SECONDS = 0.5
"""A record's trailing lines arrive together; half a second of silence ends the record."""


def emit(lines: list[str]) -> None:
    """Log one record: a log4j header line and its continuation lines, or one plain line."""
    if not lines:
        return
    head = _HEAD.match(lines[0])
    if head is None:
        logging.getLogger("spark.jvm").info(lines[0])
        return
    level, name, message = head.groups()
    extra = {"detail": "\n".join(lines[1:])} if len(lines) > 1 else {}
    logging.getLogger(f"spark.{name}").log(_LEVELS[level], message, extra=extra)


def _pump(fd: int) -> None:
    buffer = b""
    record: list[str] = []
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], _IDLE_FLUSH_SECONDS)
            if not ready:
                emit(record)
                record = []
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace").rstrip()
                if not line.strip():
                    continue
                if record and _HEAD.match(record[0]) and not _HEAD.match(line):
                    record.append(line)  # a stack trace or message continuation
                else:
                    emit(record)
                    record = [line]
        if buffer.strip():
            record.append(buffer.decode(errors="replace").rstrip())
        emit(record)
    finally:
        os.close(fd)


def forward_output() -> int:
    """A pipe whose lines become log events; returns the write end (the caller closes its copy)."""
    read_fd, write_fd = os.pipe()
    threading.Thread(target=_pump, args=(read_fd,), name="spark-jvm-output", daemon=True).start()
    return write_fd
