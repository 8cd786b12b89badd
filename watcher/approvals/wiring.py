"""Start-up of approvals: whether they are on, and the daemon's refusals (signing key, TLS off loopback)."""

from __future__ import annotations

import os

from watcher.approvals.signing import signing_key_problem
from watcher.config import WatcherConfig
from watcher.config.approvals import SIGNING_KEY_ENV, is_loopback, uses_approvals


def enabled(config: WatcherConfig) -> bool:
    """Whether any watch or profile of ``config`` has an ``approval`` block."""
    return uses_approvals(list(config.watches), list(config.profiles.values()))


def startup_problem(config: WatcherConfig) -> tuple[str | None, bool]:
    """(why the daemon must not start, or None; whether it serves the API insecurely off loopback)."""
    if not enabled(config):
        return None, False
    problem = signing_key_problem(os.environ.get(SIGNING_KEY_ENV))
    if problem is not None:
        return problem, False
    http = config.http
    if http is None or is_loopback(http.host) or http.tls_certfile:
        return None, False
    if http.allow_insecure:
        return None, True
    return (f"http.host {http.host} is not loopback and approvals carry passwords and tokens: configure "
            "http.tls_certfile and http.tls_keyfile, or set http.allow_insecure: true behind a TLS proxy"), False
