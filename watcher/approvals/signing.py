"""HMAC-SHA256 signatures of approval records, with the daemon's key (``$REGISTRY_WATCHER_SIGNING_KEY``).

A signature covers the record's canonical JSON (sorted keys, no spaces) *and* the tag key it is stored
under, so a signed value copied to another key, version or model does not verify. Anyone with edit
rights can write a tag; nobody without the key can write one that verifies. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

from watcher.config.approvals import MIN_KEY_LENGTH, SIGNING_KEY_ENV

SIG = "sig"


class SigningKeyMissing(RuntimeError):
    """``$REGISTRY_WATCHER_SIGNING_KEY`` is unset or shorter than the minimum."""


def signing_key_problem(value: str | None) -> str | None:
    """Why ``value`` is not a usable key (None: it is)."""
    if not value:
        return f"${SIGNING_KEY_ENV} is not set; approvals need it (at least {MIN_KEY_LENGTH} characters)"
    if len(value) < MIN_KEY_LENGTH:
        return f"${SIGNING_KEY_ENV} is shorter than {MIN_KEY_LENGTH} characters"
    return None


class Signer:
    """Signs and verifies record payloads with one key."""

    def __init__(self, key: str) -> None:
        problem = signing_key_problem(key)
        if problem is not None:
            raise SigningKeyMissing(problem)
        self._key = key.encode()

    @classmethod
    def from_env(cls) -> Signer:
        """The signer of the process's key (raises :class:`SigningKeyMissing`)."""
        return cls(os.environ.get(SIGNING_KEY_ENV, ""))

    def _mac(self, where: str, payload: Mapping[str, Any]) -> str:
        body = json.dumps({k: v for k, v in payload.items() if k != SIG}, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._key, f"{where}\n{body}".encode(), hashlib.sha256).hexdigest()

    def sign(self, where: str, payload: Mapping[str, Any]) -> str:
        """The JSON to store under tag ``where``: ``payload`` plus its signature."""
        return json.dumps({**payload, SIG: self._mac(where, payload)}, sort_keys=True, separators=(",", ":"))

    def verified(self, where: str, text: str) -> dict[str, Any] | None:
        """The payload stored under ``where`` when its signature holds, else None (forged or damaged)."""
        try:
            payload = json.loads(text)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get(SIG), str):
            return None
        if not hmac.compare_digest(payload[SIG], self._mac(where, payload)):
            return None
        return {k: v for k, v in payload.items() if k != SIG}


def actor_hash(username: str) -> str:
    """A tag-key-safe, fixed-length name of a person (usernames may hold ``@`` or spaces)."""
    return hashlib.sha256(username.encode()).hexdigest()[:16]
