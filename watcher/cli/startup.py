"""From parsed arguments to an exit code: the config, the logging, the client, the verb, the errors.

Imported by :func:`watcher.cli.main` after the arguments are parsed, so ``--help`` (and a usage
error) loads none of this. ``check-config --offline`` stops before the logging and the MLflow
client: it loads the schema only (``watcher.cli.check``).

Every error ends as ``error: <one line>`` on stderr (a JSON object ``{"error": ...}`` instead with
``--json``). Exit codes: 0 ok; 1 an error (``check-config`` also for a file that does not load);
2 a file that does not load, for every other verb (documented since the first release: a daemon
that cannot start is told apart from one that ran and failed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from watcher.cli.check import check_offline, config_error_lines
from watcher.cli.output import say_errors
from watcher.config import ConfigError, load_config
from watcher.obs.redact import add_secrets, uri_password

DAEMON_VERBS = {"run", "once", "check-config"}
"""Verbs whose output is the log (on stdout); the others print a report on stdout, logs on stderr."""
CLIENT_ONLY_VERBS = {"status", "history", "promote", "rollback", "webhooks"}
"""Verbs that use nothing but the client: MLflow's process-wide URIs are not set for them (faster start-up)."""
QUIET_VERBS = {"status"}
"""Report verbs whose info events (discovery, one per watch) stay off stderr unless ``log.level`` is DEBUG."""
CONFIG_INVALID = 2


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit code."""
    as_json = bool(getattr(args, "json", False))
    invalid = 1 if args.verb == "check-config" else CONFIG_INVALID
    if getattr(args, "offline", False):
        return check_offline(args.config)
    from watcher.obs.logs import configure_logging, get_logger

    log = get_logger("watcher.cli")
    daemon = args.verb in DAEMON_VERBS
    stream = sys.stdout if daemon else sys.stderr
    configure_logging(stream=stream, capture_stray_output=daemon)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if daemon:  # the daemon's log says it too (its stdout is what a log pipeline reads)
            log.error("config_invalid", error=str(exc), config=args.config)
        say_errors(config_error_lines(exc), as_json=as_json)
        return invalid
    add_secrets(uri_password(u) for u in (config.tracking_uri, config.registry_uri,
                                          config.ha.lock_url if config.ha else None))
    level = config.log.level
    if args.verb in QUIET_VERBS and level.upper() == "INFO":
        level = "WARNING"  # a report: the discovery's one line per watch would drown it
    configure_logging(level, config.log.format, stream=stream, capture_stray_output=daemon)
    try:
        from watcher.cli.commands import dispatch
        from watcher.store.client import make_client

        client = make_client(config, process_wide=args.verb not in CLIENT_ONLY_VERBS)
        return dispatch(args, config, client)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. the server is down: one redacted line, not a raw traceback
        text = failure_text(exc)
        if daemon:
            log.error("command_failed", verb=args.verb, error=text)
        say_errors([f"{args.verb}: {text}"], as_json=as_json)
        return 1


def failure_text(exc: BaseException) -> str:
    """An exception as one line: MLflow's own message (its error code first) without the traceback
    or the server's HTML, else ``Type: message``."""
    message = getattr(exc, "message", None)
    code = getattr(exc, "error_code", None)
    if isinstance(message, str) and message:
        named = isinstance(code, str) and code and code != "INTERNAL_ERROR" and not message.startswith(str(code))
        text = f"{code}: {message}" if named else message
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
