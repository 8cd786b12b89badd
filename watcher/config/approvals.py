"""Approvals (the two-person rule on production) and the identity providers that verify approvers.

:class:`ApprovalConfig` is one watch's (or profile's) ``approval`` block; :class:`IdentityConfig`
the top-level ``identity`` block (OIDC). :func:`approval_setup_problem` is the cross-check the whole
file gets (a watch with ``approval`` needs the daemon's ``http`` block, since people act through its
API). The signing key is never in the file: ``$REGISTRY_WATCHER_SIGNING_KEY`` only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from watcher.config.base import Strict

if TYPE_CHECKING:
    from watcher.config.service import HttpConfig

SIGNING_KEY_ENV = "REGISTRY_WATCHER_SIGNING_KEY"
"""The environment variable holding the daemon's HMAC key (at least :data:`MIN_KEY_LENGTH` characters)."""
MIN_KEY_LENGTH = 32
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""The only JWT algorithms accepted: asymmetric ones (never HS*, never ``none``)."""


class ApprovalConfig(Strict):
    """Production moves only after ``required`` of ``approvers`` approved a request."""

    required: int = Field(ge=1)
    """Approvals needed (a count, >= 1); each approver counts once."""
    approvers: list[str] = Field(min_length=1)
    """Usernames allowed to approve, as the identity provider names them (MLflow login or the OIDC claim)."""
    expire_after_hours: float = Field(24.0, gt=0)
    """Hours after which a pending request expires (fractions allowed); a day by default, so a request
    made in the evening is still open the next morning but never forever."""

    @field_validator("approvers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        names = [v.strip() for v in value if v.strip()]
        if len(set(names)) != len(names) or not names:
            raise ValueError("approvers must be distinct, non-empty usernames")
        return names

    @model_validator(mode="after")
    def _reachable(self) -> ApprovalConfig:
        if self.required > len(self.approvers):
            raise ValueError(f"required ({self.required}) is more than the {len(self.approvers)} approvers")
        return self

    @property
    def expire_after_seconds(self) -> float:
        """The expiry window in seconds."""
        return self.expire_after_hours * 3600.0


class OidcConfig(Strict):
    """An OpenID Connect provider whose bearer tokens (``$REGISTRY_WATCHER_TOKEN``) name people."""

    issuer: str = Field(min_length=1)
    """The ``iss`` every token must carry (exactly)."""
    audience: str = Field(min_length=1)
    """The ``aud`` every token must carry: this watcher's client id at the provider."""
    jwks_url: str = Field(pattern=r"^https?://")
    """Where the provider publishes its public keys (JWKS); fetched once and cached, refetched for a new key id."""
    username_claim: str = "preferred_username"
    """The claim holding the username compared with ``approvers`` (the same name as an MLflow login is the
    same person)."""
    leeway_seconds: float = Field(30.0, ge=0, le=300)
    """Clock skew tolerated on ``exp``/``nbf``/``iat``, in seconds; 30 s covers ordinary NTP drift."""


class IdentityConfig(Strict):
    """How the daemon verifies the people calling its API, besides MLflow logins (Basic)."""

    oidc: OidcConfig | None = None
    """Bearer tokens from this provider; unset: only MLflow logins (Basic) verify anybody."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (the http block's bind address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def uses_approvals(watches: Sequence[object], profiles: Sequence[object]) -> bool:
    """Whether any watch or profile (``WatchProfile`` values) has an ``approval`` block."""
    return any(getattr(w, "approval", None) is not None for w in [*watches, *profiles])


def approval_setup_problem(watches: Sequence[object], profiles: Sequence[object],
                           http: HttpConfig | None) -> str | None:
    """What is wrong with the file's approvals as a whole (None: nothing)."""
    if not uses_approvals(watches, profiles):
        return None
    if http is None:
        return ("approval: a watch or profile has an approval block but there is no http block "
                "(people act through the daemon's API)")
    if bool(http.tls_certfile) != bool(http.tls_keyfile):
        return "http.tls_certfile and http.tls_keyfile go together"
    return None
