"""Which failures are the tracking server being unreachable (not the run's fault, not a bug).

An unreachable server (connection refused or reset, a timeout, a gateway's 502/503/504) is an
outage: the daemon backs off and reports it once (``tracking_server_unreachable``), and no run's
attempt counter moves. Any other failure of one run is counted against that run
(``watcher.attempts``). Standard library only: the bottom of the import graph.
"""

from __future__ import annotations

_MARKERS = (  # never bare "Max retries exceeded": urllib3 says that for a storm of 500s too
    "Connection refused", "ConnectionRefusedError", "Connection reset",
    "Connection aborted", "Failed to establish a new connection", "RemoteDisconnected",
    "Read timed out", "timed out", "NewConnectionError", "too many 502 error responses",
    "too many 503 error responses", "too many 504 error responses", "Temporary failure in name resolution",
)


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (or anything in its cause/context chain) says the server did not answer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        module = type(current).__module__ or ""
        if module.startswith(("requests", "urllib3")) and type(current).__name__ in (
                "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "ProtocolError", "MaxRetryError"):
            return True
        text = str(current)
        if any(marker in text for marker in _MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False
