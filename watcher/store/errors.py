"""Which failures are the tracking server being unreachable (not the run's fault, not a bug).

An unreachable server (connection refused or reset, a timeout, a gateway's 502/503/504) is an
outage: the daemon backs off and reports it once (``tracking_server_unreachable``), and no run's
attempt counter moves. Any other failure of one run is counted against that run
(``watcher.attempts``).

Classified by exception type and HTTP status, never by message text, walking the cause/context
chain (MLflow wraps the transport's error in an ``MlflowException`` raised inside its handler):

* the standard library's ``ConnectionError`` (refused, reset, aborted) and ``TimeoutError``;
* requests' ``ConnectionError`` and ``Timeout``, urllib3's ``ProtocolError``, ``NewConnectionError``
  (with ``NameResolutionError``) and ``TimeoutError`` (connect and read);
* urllib3's ``MaxRetryError`` by its ``reason``: MLflow retries 408/429/500/502/503/504 and, when the
  retries run out, raises the ``MaxRetryError`` whose reason is a ``ResponseError``. urllib3 carries
  that status only in the ``ResponseError``'s text, built from its public template
  ``ResponseError.SPECIFIC_ERROR``; the status is read back with that same template, so 502/503/504
  (a gateway with no server behind it) are an outage and a storm of 500s or 429s is not;
* an ``MlflowException`` whose error code maps to HTTP 503 or 504 (``TEMPORARILY_UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``): the server itself said it cannot answer now; requests' ``HTTPError`` with
  a response of status 502/503/504.
"""

from __future__ import annotations

import requests.exceptions
import urllib3.exceptions
from mlflow.exceptions import MlflowException

GATEWAY_STATUSES = frozenset({502, 503, 504})
"""HTTP statuses of a server (or the proxy before it) that cannot answer now."""

_TRANSPORT = (
    ConnectionError, TimeoutError,  # builtins: refused, reset, aborted; socket timeouts
    requests.exceptions.ConnectionError, requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError, urllib3.exceptions.TimeoutError,
)
_GATEWAY_RETRY_REASONS = {urllib3.exceptions.ResponseError.SPECIFIC_ERROR.format(status_code=code): code
                          for code in GATEWAY_STATUSES}
"""urllib3's exact text of a retry exhaustion on each gateway status (its own template)."""


def retry_exhausted_status(exc: BaseException) -> int | None:
    """The HTTP status whose retries ran out, for urllib3's ``ResponseError`` on a gateway status."""
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return _GATEWAY_RETRY_REASONS.get(str(exc))
    return None


def _says_unreachable(exc: BaseException) -> bool:
    """This one exception (not its chain) says the server did not answer."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        return exc.reason is not None and _says_unreachable(exc.reason)
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return retry_exhausted_status(exc) is not None
    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() in GATEWAY_STATUSES  # type: ignore[no-untyped-call]
    if isinstance(exc, requests.exceptions.HTTPError):  # raise_for_status() of a request made without retries
        return exc.response is not None and exc.response.status_code in GATEWAY_STATUSES
    return isinstance(exc, _TRANSPORT)


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
