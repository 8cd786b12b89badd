"""Who is calling: a verified username from the caller's own credentials, or a refusal with the reason.

* ``Authorization: Bearer <jwt>`` (an OIDC token, ``$REGISTRY_WATCHER_TOKEN`` on the CLI): verified
  with PyJWT against the provider's JWKS (cached, :class:`jwt.PyJWKClient`), its issuer, audience and
  expiry, with a fixed list of asymmetric algorithms (never HS* or ``none``), each token under its
  key's own algorithm; the username is the configured claim. A token wins over a Basic login when both are sent.
* ``Authorization: Basic ...`` (an MLflow login): one plain HTTP ``GET /api/2.0/mlflow/users/current``
  to the tracking server, stripped of any ``user:pass@`` in its URI, carrying **only** the caller's
  header (MLflow's client would add the daemon's own login and vouch for everybody as the service
  account). 200 names the user; 401 is a wrong login; 404 is a server without authentication, which
  vouches for nobody.

Anything else (``$REGISTRY_WATCHER_USER``, a run's tags) is never an identity here.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from watcher.config.approvals import ASYMMETRIC_ALGORITHMS, OidcConfig

USERS_CURRENT = "/api/2.0/mlflow/users/current"
TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Caller:
    """A verified person: the username and how it was verified (``basic`` or ``oidc``)."""

    username: str
    via: str


class Unverified(Exception):
    """The caller could not be verified; the message says why (an HTTP 401)."""


def server_base(tracking_uri: str) -> str | None:
    """The tracking server's base URL without ``user:pass@``; None for a local store (no server to ask)."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as an error: the caller's ``Authorization`` header never goes to another address."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,  # noqa: ARG002
                         newurl: str) -> None:  # noqa: ARG002 - the base signature
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def _basic(authorization: str, tracking_uri: str) -> Caller:
    base = server_base(tracking_uri)
    if base is None:
        raise Unverified("the tracking store is not an MLflow server with authentication: it verifies no login")
    request = urllib.request.Request(base + USERS_CURRENT, method="GET",  # noqa: S310 - the configured server
                                     headers={"Authorization": authorization, "Accept": "application/json"})
    try:
        with _NO_REDIRECTS.open(request, timeout=TIMEOUT_S) as resp:
            body: Any = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise Unverified("the tracking server refused this MLflow login (wrong username or password)") from None
        if exc.code == 404:
            raise Unverified("the tracking server has no authentication (users/current answers 404): "
                             "it vouches for nobody") from None
        raise Unverified(f"the tracking server could not verify the login (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unverified(f"the tracking server could not be asked who this is: {exc}") from None
    username = body.get("user", {}).get("username") if isinstance(body, dict) else None
    if not isinstance(username, str) or not username:
        raise Unverified("the tracking server's users/current answer names no user")
    return Caller(username, "basic")


_JWKS: dict[str, jwt.PyJWKClient] = {}
_JWKS_LOCK = threading.Lock()
JWKS_LIFESPAN_S = 600.0
"""How long the provider's key set is kept (seconds) before it is fetched again: a key the provider
withdrew stops counting within this; an unknown key id refetches at once (at most every 30 s)."""


def _jwks(url: str) -> jwt.PyJWKClient:
    with _JWKS_LOCK:
        if url not in _JWKS:
            # no per-key cache (cache_keys): it never expires, so a withdrawn key would count until a restart
            _JWKS[url] = jwt.PyJWKClient(url, cache_keys=False, lifespan=JWKS_LIFESPAN_S, timeout=int(TIMEOUT_S))
        return _JWKS[url]


def _claims(token: str, oidc: OidcConfig) -> dict[str, Any]:
    try:
        key = _jwks(oidc.jwks_url).get_signing_key_from_jwt(token)
        alg = jwt.get_unverified_header(token).get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise Unverified(f"the token's algorithm {alg!r} is not accepted (only {', '.join(ASYMMETRIC_ALGORITHMS)})")
        if alg != key.algorithm_name:  # the key's own algorithm, never the one the token's header claims
            raise Unverified(f"the token's algorithm {alg} is not its key's ({key.algorithm_name})")
        claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[alg], audience=oidc.audience,
                                            issuer=oidc.issuer, leeway=oidc.leeway_seconds,
                                            options={"require": ["exp", "iss", "aud"]})
    except jwt.PyJWKClientConnectionError as exc:
        raise Unverified(f"the identity provider's keys (JWKS) could not be fetched: {exc}") from None
    except jwt.PyJWKClientError as exc:
        raise Unverified(f"the token's signing key is not the provider's: {exc}") from None
    except (jwt.PyJWTError, TypeError, ValueError) as exc:  # a key of another kind raises TypeError
        raise Unverified(f"the token was refused: {type(exc).__name__}: {exc}") from None
    return claims


def _bearer(token: str, oidc: OidcConfig | None) -> Caller:
    if oidc is None:
        raise Unverified("a bearer token was sent but no identity.oidc provider is configured")
    claims = _claims(token, oidc)
    username = claims.get(oidc.username_claim)
    if not isinstance(username, str) or not username:
        raise Unverified(f"the token has no '{oidc.username_claim}' claim")
    return Caller(username, "oidc")


def verify_caller(headers: Mapping[str, str], tracking_uri: str, oidc: OidcConfig | None) -> Caller:
    """The verified caller of a request with ``headers`` (lower-case names); raises :class:`Unverified`.

    ``Authorization`` may carry one credential; a second header ``X-Registry-Watcher-Token`` lets a
    client send a token beside a Basic login, and the token then wins."""
    token = headers.get("x-registry-watcher-token", "").strip()
    authorization = headers.get("authorization", "").strip()
    scheme, _, value = authorization.partition(" ")
    if not token and scheme.lower() == "bearer":
        token = value.strip()
    if token:
        return _bearer(token, oidc)
    if scheme.lower() == "basic" and value.strip():
        return _basic(f"Basic {value.strip()}", tracking_uri)
    raise Unverified("no credentials: send an MLflow login (Basic) or an OIDC token (Bearer)")
