"""Which failures are the tracking server being unreachable (not the run's fault, not a bug).

An unreachable server is an outage: the daemon backs off and reports it once
(``tracking_server_unreachable``), and no run's attempt counter moves. Any other failure of one
run is counted against that run (``watcher.attempts``).

Classified by exception type, never by message text, walking the cause/context chain (MLflow
wraps the transport's error in an ``MlflowException`` raised inside its handler). Unreachable:

* the standard library's ``ConnectionError`` (refused, reset, aborted) and ``TimeoutError``
  anywhere in the chain, whoever raised it (a database driver that chains the socket's error too);
* requests' ``ConnectionError`` and ``Timeout``; urllib3's ``ProtocolError``, ``NewConnectionError``
  (with ``NameResolutionError``) and ``TimeoutError`` (connect and read);
* urllib3's ``MaxRetryError``, whatever its reason: MLflow retries 408/429/500/502/503/504, and
  when the retries run out (requests raises ``RetryError`` in the ``MaxRetryError``'s handler) the
  server has failed every attempt: an outage, a storm of 500s or 429s as much as a gateway's 503;
* a bare urllib3 ``ResponseError`` (outside a ``MaxRetryError``) on 502/503/504, read back with
  urllib3's own public template ``ResponseError.SPECIFIC_ERROR``.

Not unreachable: an answer of the server without retries behind it, whatever its status: a
``RestException`` (even ``TEMPORARILY_UNAVAILABLE``/503 or ``DEADLINE_EXCEEDED``/504), requests'
``HTTPError``; an ``MlflowException`` raised in this process (an in-process store's 503/504
error codes, e.g. SQLite's "database is locked" wrapped as ``TEMPORARILY_UNAVAILABLE``); text that
only looks like an outage. A database driver's ``OperationalError`` (psycopg, psycopg2, or
``sqlalchemy.exc.OperationalError`` around one: a tracking URI that is the database itself) is
unreachable when it carries no SQLSTATE: the connection failed before the server answered any
statement (refused, reset, timed out, or refused at login: libpq gives no typed cause, and the
message text is not read). Either way it is the store's failure, never the run's. With a SQLSTATE
(a statement the server refused) it is not.
"""

from __future__ import annotations

import requests.exceptions
import urllib3.exceptions

GATEWAY_STATUSES = frozenset({502, 503, 504})
"""HTTP statuses of a server (or the proxy before it) that cannot answer now."""

_TRANSPORT = (
    ConnectionError, TimeoutError,  # builtins: refused, reset, aborted; socket timeouts
    requests.exceptions.ConnectionError, requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError, urllib3.exceptions.TimeoutError,
    urllib3.exceptions.MaxRetryError,  # retries ran out, whatever the reason
)
_GATEWAY_RETRY_REASONS = {urllib3.exceptions.ResponseError.SPECIFIC_ERROR.format(status_code=code): code
                          for code in GATEWAY_STATUSES}
"""urllib3's exact text of a retry exhaustion on each gateway status (its own template)."""


def retry_exhausted_status(exc: BaseException) -> int | None:
    """The HTTP status whose retries ran out, for urllib3's ``ResponseError`` on a gateway status."""
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return _GATEWAY_RETRY_REASONS.get(str(exc))
    return None


_DRIVERS = ("psycopg", "psycopg2", "sqlalchemy")


def is_connection_failure(exc: BaseException) -> bool:
    """A database driver's ``OperationalError`` with no SQLSTATE: the connection itself failed.

    Matched by the class's name and module (no driver is imported here: the CLI's start-up stays
    cheap); sqlalchemy's wrapper is judged by the driver's error it wraps (``orig``)."""
    if type(exc).__name__ != "OperationalError" or not type(exc).__module__.startswith(_DRIVERS):
        return False
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and orig is not exc:
        return is_connection_failure(orig)
    return getattr(exc, "sqlstate", None) is None and getattr(exc, "pgcode", None) is None


def _says_unreachable(exc: BaseException) -> bool:
    """This one exception (not its chain) says the server did not answer."""
    return isinstance(exc, _TRANSPORT) or retry_exhausted_status(exc) is not None or is_connection_failure(exc)


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (or anything in its cause/context chain) says the server did not answer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_unreachable(current):
            return True
        current = current.__cause__ or current.__context__
    return False
