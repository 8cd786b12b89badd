"""Which process wrote something, and whether that process is gone.

An intent in the audit trail records its writer: host name, pid and the process's start time (on
Linux the ``starttime`` field of ``/proc/<pid>/stat``, so a reused pid is not mistaken for the
writer). Another process on the same host can then tell whether the writer still runs; from
another host it cannot (None: unknowable), and the caller falls back on a timeout.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessId:
    """A process as recorded: host, pid, start time (empty when the platform does not tell)."""

    host: str
    pid: int
    started: str


def _start_time(pid: int) -> str:
    """Clock ticks after boot at which ``pid`` started (Linux), else ``""``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else ""


def current() -> ProcessId:
    """This process."""
    pid = os.getpid()
    return ProcessId(socket.gethostname(), pid, _start_time(pid))


def is_gone(recorded: ProcessId | None) -> bool | None:
    """True when the recorded process no longer runs; False when it does; None when it cannot be
    known (no record, or another host)."""
    if recorded is None or recorded.host != socket.gethostname():
        return None
    try:
        os.kill(recorded.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return None
    return bool(recorded.started) and _start_time(recorded.pid) not in ("", recorded.started)  # a reused pid
