"""Command line: ``registry-watcher VERB --config FILE``.

``run`` (the daemon), ``once`` (one pass; exit 1 if any watch errored), ``check-config``,
``status``, ``promote``, ``rollback``, ``history``, ``explain`` and ``webhooks install|list|uninstall``. A bad or
missing config exits 2 before anything starts, with each bad field named by its location.

The verbs and their printing live here (``status``, ``history``, ``explain``, ``commands``); the
process is ``watcher.service``. :func:`main` sets the MLflow environment
(``watcher.obs.environment``) before anything imports MLflow, so importing this module changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from watcher.config import ConfigError, load_config
from watcher.obs.environment import apply_mlflow_environment
from watcher.obs.logs import configure_logging, get_logger
from watcher.obs.redact import add_secrets, uri_password

log = get_logger("watcher.cli")
DAEMON_VERBS = {"run", "once", "check-config"}
CLIENT_ONLY_VERBS = {"status", "history", "promote", "rollback", "webhooks"}
"""Verbs that use nothing but the client: MLflow's process-wide URIs are not set for them (faster start-up)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-watcher", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=os.environ.get("REGISTRY_WATCHER_CONFIG", "watcher.yaml"),
                        help="YAML config file (default $REGISTRY_WATCHER_CONFIG or ./watcher.yaml)")
    sub.add_parser("run", parents=[common], help="run the daemon until SIGTERM/SIGINT")
    sub.add_parser("once", parents=[common], help="one full pass over every watch, then exit")
    sub.add_parser("check-config", parents=[common], help="validate the file and reach the server")
    status = sub.add_parser("status", parents=[common], help="aliases, scoring and last decisions per watch")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument("--last", type=int, default=5, help="how many recent decisions to show")
    for verb, text in (("promote", "move the production alias"), ("rollback", "move production back")):
        p = sub.add_parser(verb, parents=[common], help=text)
        p.add_argument("--model", required=True)
        p.add_argument("--version" if verb == "promote" else "--to", dest="version", default=None)
        p.add_argument("--reason", default="", help="why; recorded on the version and in the history")
        p.add_argument("--force", action="store_true",
                       help="move even onto a version the gates rejected or never decided (needs --reason); "
                            "recorded as forced")
    hist = sub.add_parser("history", parents=[common], help="print the production alias history")
    hist.add_argument("--model", required=True)
    hist.add_argument("--json", action="store_true")
    hist.add_argument("--at", default=None, metavar="TIME",
                      help="ISO-8601 time (e.g. 2026-11-20T10:00:00Z): which version held production then, and why")
    expl = sub.add_parser("explain", parents=[common], help="why a run was registered or rejected, and what followed")
    expl.add_argument("--run", required=True, dest="run_id", help="the training run's id")
    expl.add_argument("--json", action="store_true")
    hooks = sub.add_parser("webhooks", help="manage the MLflow webhook that notifies this watcher")
    hooks_sub = hooks.add_subparsers(dest="webhooks_verb", required=True)
    install = hooks_sub.add_parser("install", parents=[common],
                                   help="create or update (idempotently) the MLflow webhook pointing at --url")
    install.add_argument("--url", required=True, help="public URL of POST /webhooks/mlflow on the watcher")
    listing = hooks_sub.add_parser("list", parents=[common], help="every MLflow webhook: id, status, URL, events")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    remove = hooks_sub.add_parser("uninstall", parents=[common],
                                  help="delete the MLflow webhook pointing at --url (exit 1 when there is none)")
    remove.add_argument("--url", required=True, help="the URL the webhook delivers to")
    # ---- issue 26 (fleet) verbs ----
    # ---- issue 27 (approvals) verbs ----
    # ---- issue 28 (outgoing events) verbs ----
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    apply_mlflow_environment()  # before the first import of mlflow (below: the verbs, the client)
    from watcher.cli.commands import dispatch
    from watcher.store.client import make_client

    args = _parser().parse_args(argv)
    daemon = args.verb in DAEMON_VERBS
    stream = sys.stdout if daemon else sys.stderr
    configure_logging(stream=stream, capture_stray_output=daemon)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("config_invalid", error=str(exc), config=args.config)
        return 2
    add_secrets(uri_password(u) for u in (config.tracking_uri, config.registry_uri,
                                          config.ha.lock_url if config.ha else None))
    configure_logging(config.log.level, config.log.format, stream=stream, capture_stray_output=daemon)
    client = make_client(config, process_wide=args.verb not in CLIENT_ONLY_VERBS)
    try:
        return dispatch(args, config, client)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. the server is down: one redacted event, not a raw traceback
        log.error("command_failed", verb=args.verb, error=f"{type(exc).__name__}: {exc}")
        return 1
