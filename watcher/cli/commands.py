"""The verbs: each a function of the parsed arguments, the config and a client; returns the exit code."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from watcher.cli.output import say, say_error
from watcher.config import PRECEDENCE, WatcherConfig, env_overrides
from watcher.obs.logs import get_logger

if TYPE_CHECKING:
    from watcher.service.poller import Poller

log = get_logger("watcher.cli")


def dispatch(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int:
    """Run the verb named by ``args.verb``."""
    if args.verb in ("run", "once", "check-config"):  # issue 27: approvals need the signing key, TLS off loopback
        from watcher.cli.approvals import startup_refused

        if startup_refused(config):
            return 2
    if args.verb in ("run", "once"):  # the process (scheduler, HTTP, scoring) only for the daemon verbs
        from watcher.service import poller as polling
        from watcher.service.daemon import make_leader, run_daemon

        if args.verb == "run":
            return run_daemon(client, config, config_path=args.config)
        return once(polling.Poller(client, config, leader=make_leader(config, member=False)))
    if args.verb == "check-config":
        return check_config(client, config)
    if args.verb == "status":
        from watcher.cli.status import status

        return status(client, config, args.json, args.last)
    if args.verb == "explain":
        return explain(client, config, args.run_id, args.json)
    # ---- issue 26 (fleet) verbs ----
    if args.verb == "claim":
        from watcher.cli.claim import claim_model

        return claim_model(client, config, args.model, args.experiment, args.reason)
    # ---- issue 27 (approvals) verbs ----
    if args.verb in ("approve", "reject", "withdraw", "approvals", "promote", "rollback"):
        from watcher.cli import approvals

        handled = approvals.dispatch(args, config, client)
        if handled is not None:
            return handled
    # ---- issue 28 (outgoing events) verbs ----
    if args.verb == "events":
        from watcher.cli.events import events_verb

        return events_verb(args, config)
    if args.verb == "webhooks":
        from watcher.cli import webhooks

        return webhooks.dispatch(args, config, client)
    return model_verb(args, config, client)


def model_verb(args: argparse.Namespace, config: WatcherConfig, client: MlflowClient) -> int:
    """``history``, ``promote`` and ``rollback``: the verbs about one watched model (``--model``)."""
    from watcher.engine.discovery import find_watch

    watch = find_watch(client, config, args.model)  # configured, else discovered by experiment tag
    if watch is None:
        say_error(f"no watch for model '{args.model}' in {args.config}")
        return 2
    if args.verb == "history":
        from watcher.cli.history import history

        return history(client, watch, config.audit_experiment, args.at, args.json)
    from watcher.engine import promotion

    move = promotion.promote if args.verb == "promote" else promotion.rollback
    try:
        entry = move(client, watch, args.version, args.reason, promotion.cli_user(), force=args.force,
                     audit_experiment=config.audit_experiment)
    except promotion.PromotionError as exc:
        say_error(str(exc))
        return 1
    say(f"{watch.model_name}: '{watch.production_alias}' -> v{entry.version} "
        f"(was {entry.previous or 'unset'}){' FORCED' if entry.forced else ''}; the running daemon will score it")
    return 0


def explain(client: MlflowClient, config: WatcherConfig, run_id: str, as_json: bool) -> int:
    """``explain --run``: 1 when the run does not exist."""
    from watcher.cli import explain as explaining

    try:
        found = explaining.explain(client, config, run_id)
    except explaining.ExplainError as exc:
        say_error(str(exc))
        return 1
    say(json.dumps(found, indent=2, default=str) if as_json else explaining.format_text(found))
    return 0


def once(poller: Poller) -> int:
    """``once``: 1 when a watch errored, failed or was refused (one ``error:`` line each), or when nothing
    was acted on because the lock database was unreachable; 0 with one ``standby: another replica
    leads M`` line when another replica holds M."""
    report = poller.poll()
    leader = poller.leader
    try:
        if leader is not None and leader.db_up is False:
            log.error("once_acted_on_nothing", reason="the ha lock database is unreachable")
            say_error("the ha lock database is unreachable: acted on nothing")
            return 1
        standby = [w.model_name for w in report.watches if w.standby] if report is not None else []
        if standby:
            say(f"standby: another replica leads {', '.join(standby)}")
        from watcher.cli.outcome import once_problems

        problems = once_problems(poller, report)
        for problem in problems:
            say_error(problem)
        return 1 if problems else 0
    finally:
        if leader is not None:
            leader.close()


def check_config(client: MlflowClient, config: WatcherConfig) -> int:
    """``check-config``: the file is valid (else exit 1 earlier); reach the server and the ``ha`` lock
    database, look at the local scoring inputs and the profiles, and list the watches it would make
    and refuse (``watcher.cli.check``); 1 naming each thing that failed (all are checked)."""
    from watcher.cli.check import check_online
    from watcher.service.health import lock_database_error
    from watcher.store import experiments

    log.info("config_sources", precedence=PRECEDENCE, env_overrides=env_overrides(),
             tracking_uri=config.tracking_uri)
    failed = []
    try:
        experiments.ping(client)
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        log.error("tracking_server_unreachable", error=f"{type(exc).__name__}: {exc}")
        say_error(f"tracking server unreachable: {type(exc).__name__}: {exc}")
        failed.append("tracking_server")
    if config.ha is not None:
        problem = lock_database_error(config.ha)
        if problem is not None:
            log.error("lock_database_unreachable", error=problem)
            say_error(f"ha lock database unreachable: {problem}")
            failed.append("lock_database")
        else:
            log.info("lock_database_ok")
    if config.events is not None:  # issue 28: reach every output, no event sent
        from watcher.cli.events import check_outputs

        failed += check_outputs(config)
    return check_online(client, config, failed)
