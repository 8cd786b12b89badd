"""The approvals verbs (issue 27): ``promote``/``rollback`` on a watch with ``approval``, ``approve``,
``reject``, ``withdraw`` and ``approvals``, all through the daemon's API with the caller's own
credentials (``$REGISTRY_WATCHER_TOKEN`` as Bearer, else ``$MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as
Basic). The daemon verifies them; nothing here is an identity. Every refusal is one ``error:`` line, exit 1.

Also :func:`startup_refused`: ``run``, ``once`` and ``check-config`` exit 2 without the signing key (or
without TLS off loopback) when approvals are on.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from typing import Any
from urllib.parse import quote, urlencode

from mlflow import MlflowClient

from watcher.cli.api import ApiResponse, ApiUnavailable, api_request
from watcher.cli.output import say, say_error
from watcher.config import WatcherConfig
from watcher.obs.logs import get_logger

log = get_logger("watcher.cli")
TOKEN_ENV = "REGISTRY_WATCHER_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def startup_refused(config: WatcherConfig) -> bool:
    """True (after one error line) when the daemon must not start; warns when it serves plain HTTP off loopback."""
    from watcher.approvals.wiring import startup_problem

    problem, insecure = startup_problem(config)
    if problem is not None:
        log.error("approval_setup_refused", reason=problem)
        say_error(problem)
        return True
    if insecure and config.http is not None:
        log.warning("approval_api_insecure", host=config.http.host)
    return False


def credentials() -> dict[str, str]:
    """The caller's own credentials as headers: a token wins (a Basic login goes beside it)."""
    headers: dict[str, str] = {}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME", ""), os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        headers["X-Registry-Watcher-Token"] = token
        headers.setdefault("Authorization", f"Bearer {token}")
    return headers


def _failed(resp: ApiResponse) -> int:
    say_error(resp.detail or f"HTTP {resp.status}")
    return 1


def _request_line(row: dict[str, Any]) -> str:
    votes = ",".join(row.get("approved_by") or []) or "-"
    return (f"{row['id']}  {row['model']} v{row['version']}  {row['state']:10}  by {row['requested_by']}  "
            f"approved {votes} ({len(row.get('approved_by') or [])}/{row['required']})  "
            f"expires {row['expires_at']}  {row.get('reason') or ''}")


def _listing(config: WatcherConfig, args: argparse.Namespace) -> int:
    query = urlencode([(k, v) for k, v in (("model", args.model), ("state", args.state)) if v])
    resp = api_request(config, "GET", "/api/v1/approvals" + (f"?{query}" if query else ""))
    if not resp.is_success:
        return _failed(resp)
    rows = resp.body or []
    say(json.dumps(rows, indent=2) if args.json else "\n".join(_request_line(r) for r in rows) or "(no approval requests)")
    return 0


def _vote(config: WatcherConfig, args: argparse.Namespace) -> int:
    resp = api_request(config, "GET", "/api/v1/approvals?" + urlencode({"model": args.model}))
    if not resp.is_success:
        return _failed(resp)
    mine = [r for r in resp.body or [] if str(r.get("version")) == str(args.version)]
    if not mine:
        say_error(f"{args.model} v{args.version} has no approval request")
        return 1
    newest = mine[-1]
    if newest["state"] != "pending":
        say_error(f"{args.model} v{args.version} has no pending request: its newest request is {newest['state']}")
        return 1
    resp = api_request(config, "POST", f"/api/v1/approvals/{quote(str(newest['id']), safe='')}/{args.verb}",
                       {"comment": args.comment or ""}, headers=credentials())
    if not resp.is_success:
        return _failed(resp)
    row = resp.body
    say(f"{args.model} v{args.version}: {args.verb} recorded; the request is {row['state']} "
        f"({len(row['approved_by'])}/{row['required']} approvals)")
    return 0


def _move(config: WatcherConfig, client: MlflowClient, args: argparse.Namespace, staging: str) -> int:
    if args.force:
        say_error("--force is refused on a watch with approval: the gates' refusals stand")
        return 1
    if args.verb == "rollback":
        resp = api_request(config, "POST", "/api/v1/approvals/rollback",
                           {"model": args.model, "to": args.version, "reason": args.reason}, headers=credentials())
        if resp.is_success and resp.body.get("break_glass"):
            entry = resp.body["entry"]
            say(f"{args.model}: production -> v{entry['version']} at once (break-glass rollback, recorded and alerted)")
            return 0
    else:
        version = args.version
        if version is None:
            from watcher.store import registry

            version = registry.aliases_of(registry.get_model(client, args.model)).get(staging)
            if version is None:
                say_error(f"{args.model} has no '{staging}' version to promote; pass --version")
                return 1
        resp = api_request(config, "POST", "/api/v1/approvals",
                           {"model": args.model, "version": str(version), "reason": args.reason}, headers=credentials())
    if not resp.is_success:
        return _failed(resp)
    row = resp.body
    say(f"{args.model} v{row['version']}: production request {row['id']} is {row['state']}; it needs "
        f"{row['required']} approvals by {row['expires_at']} (registry-watcher approve --model {args.model} "
        f"--version {row['version']})")
    return 0


def dispatch(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int | None:
    """The verb's exit code; None for ``promote``/``rollback`` on a watch without ``approval`` (the usual path)."""
    try:
        if args.verb == "approvals":
            return _listing(config, args)
        if args.verb in ("approve", "reject", "withdraw"):
            return _vote(config, args)
        from watcher.engine.discovery import find_watch

        watch = find_watch(client, config, args.model)
        if watch is None or watch.approval is None:
            return None
        return _move(config, client, args, watch.staging_alias)
    except ApiUnavailable as exc:
        say_error(str(exc))
        return 1
