"""Command line: ``registry-watcher VERB --config FILE``.

``run`` (the daemon), ``once`` (one pass; exit 1 if any watch errored, failed or was refused),
``check-config``, ``status``, ``promote``, ``rollback``, ``history``, ``explain`` and
``webhooks install|list|uninstall``. A bad or missing config exits 2 before anything starts (1 for
``check-config``), with each bad field named by its location; every error is one ``error:`` line on stderr.

The verbs and their printing live here (``status``, ``history``, ``explain``, ``commands``); the
process is ``watcher.service``. :func:`main` parses the arguments first (so ``--help`` imports neither
MLflow nor the config schema), then sets the MLflow environment (``watcher.obs.environment``) before
anything imports MLflow and hands over to ``watcher.cli.startup``; importing this module changes nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from watcher.obs.environment import apply_mlflow_environment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-watcher", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=os.environ.get("REGISTRY_WATCHER_CONFIG", "watcher.yaml"),
                        help="YAML config file (default $REGISTRY_WATCHER_CONFIG or ./watcher.yaml)")
    sub.add_parser("run", parents=[common], help="run the daemon until SIGTERM/SIGINT")
    sub.add_parser("once", parents=[common], help="one full pass over every watch, then exit")
    check = sub.add_parser("check-config", parents=[common],
                           help="validate the file (discover and profiles too), reach the server, list the "
                                "watches it would make and refuse; exit 1 on any error")
    check.add_argument("--offline", action="store_true",
                       help="the file's schema and local paths only: no server, no MLflow import")
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
    claim = sub.add_parser("claim", parents=[common],
                           help="make an experiment the one that feeds a registered model (moves ownership; audited)")
    claim.add_argument("--model", required=True, help="the registered model")
    claim.add_argument("--experiment", required=True, help="the experiment that feeds it from now on (name or id)")
    claim.add_argument("--reason", required=True, help="why; recorded in the audit trail")
    # ---- issue 27 (approvals) verbs ----
    for verb, text in (("approve", "approve the pending production request of a version"),
                       ("reject", "reject the pending production request of a version (needs --comment)"),
                       ("withdraw", "withdraw your own pending production request")):
        p = sub.add_parser(verb, parents=[common], help=text)
        p.add_argument("--model", required=True)
        p.add_argument("--version", required=True)
        p.add_argument("--comment", default="", required=verb == "reject", help="recorded with the vote")
    listing_ap = sub.add_parser("approvals", parents=[common], help="list production requests and their states")
    listing_ap.add_argument("--model", default=None)
    listing_ap.add_argument("--state", default=None,
                            choices=["pending", "approved", "rejected", "expired", "superseded", "withdrawn", "failed"])
    listing_ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    # ---- issue 28 (outgoing events) verbs ----
    ev = sub.add_parser("events", help="outgoing events: list, redeliver, replay, enable an output")
    ev_sub = ev.add_subparsers(dest="events_verb", required=True)
    ev_list = ev_sub.add_parser("list", parents=[common], help="events in the outbox, newest first")
    ev_list.add_argument("--output", default=None, help="only this output")
    ev_list.add_argument("--state", default=None, choices=["pending", "delivered", "dead"])
    ev_list.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100)")
    ev_list.add_argument("--json", action="store_true", help="print JSON instead of text")
    ev_re = ev_sub.add_parser("redeliver", parents=[common], help="send one event again (same id), by the daemon")
    ev_re.add_argument("--id", required=True, dest="event_id", help="the event id (ce-id)")
    ev_re.add_argument("--output", default=None, help="only to this output (default: every output it was for)")
    ev_rp = ev_sub.add_parser("replay", parents=[common], help="send an output's events since a time again (same ids)")
    ev_rp.add_argument("--output", required=True)
    ev_rp.add_argument("--since", required=True, metavar="TIME", help="ISO-8601 with an offset; filters on the event's time")
    ev_rp.add_argument("--model", default=None, help="only this model's events")
    ev_en = ev_sub.add_parser("enable", parents=[common], help="enable an output a 410 answer disabled")
    ev_en.add_argument("--output", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (``watcher.cli.startup`` says which)."""
    args = _parser().parse_args(argv)  # --help and usage errors end here, having imported nothing heavy
    apply_mlflow_environment()  # before the first import of mlflow (the verbs, the client)
    from watcher.cli.startup import run_command

    return run_command(args)
