"""``events list | redeliver | replay | enable`` and the outputs' part of ``check-config`` (issue 28).

The CLI never sends an event: ``redeliver`` and ``replay`` put the matching rows of the outbox back
to ``pending`` as replays (the same ids), and the daemon's delivery thread of that output sends
them within a second; ``enable`` clears an output's 410 mark. The outbox is the daemon's: the
``events.outbox_path`` SQLite file (run the CLI where the daemon runs), or the ``ha`` database.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from watcher.cli.output import say, say_error
from watcher.config import WatcherConfig
from watcher.events.outbox import Outbox, OutboxRow
from watcher.events.service import open_outbox
from watcher.obs.logs import get_logger
from watcher.obs.redact import add_secrets

log = get_logger("watcher.cli")


def events_verb(args: argparse.Namespace, config: WatcherConfig) -> int:
    """Dispatch ``events <verb>``; exit 1 on an error (one ``error:`` line)."""
    if config.events is None or not config.events.outputs:
        say_error("no events block with outputs in the config")
        return 1
    add_secrets(config.events.secret_values())
    verb = args.events_verb
    output = getattr(args, "output", None)
    if output is not None and config.events.output(output) is None:
        say_error(f"no output named '{output}' (outputs: {', '.join(o.name for o in config.events.outputs)})")
        return 1
    outbox = open_outbox(config)
    try:
        if verb == "list":
            return _list(outbox.rows(output, args.state, args.limit), args.json)
        if verb == "enable":
            found = outbox.set_disabled(args.output, None)
            log.info("events_output_enabled", output=args.output)
            say(f"output {args.output} enabled" if found else f"output {args.output} was never started: nothing to do")
            return 0
        return _resend(outbox, args)
    finally:
        outbox.db.close()


def _resend(outbox: Outbox, args: argparse.Namespace) -> int:
    """``redeliver`` / ``replay``: the matching rows back to pending, as replays."""
    since_ms = None
    if args.events_verb == "replay":
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            say_error(f"--since: not an ISO-8601 time: {args.since}")
            return 1
        if since.tzinfo is None:
            say_error("--since: give an offset (e.g. 2026-12-03T10:00:00+00:00 or ...Z)")
            return 1
        since_ms = int(since.timestamp() * 1000)
    rows = outbox.resend(output=args.output, event_id=getattr(args, "event_id", None), since_ms=since_ms,
                         model=getattr(args, "model", None))
    log.info("events_resend_requested", output=args.output, event_id=getattr(args, "event_id", None),
             since=getattr(args, "since", None), model=getattr(args, "model", None), rows=rows)
    if rows == 0:
        say_error("no matching event in the outbox")
        return 1
    say(f"{rows} event(s) queued again (same ids); the daemon sends them")
    return 0


def _list(rows: list[OutboxRow], as_json: bool) -> int:
    if as_json:
        say(json.dumps([r.listed() for r in rows], indent=2))
        return 0
    if not rows:
        say("(no events)")
        return 0
    say(f"{'id':36}  {'output':12}  {'type':16}  {'model':20}  {'state':9}  {'tries':>5}  {'time':24}  last error")
    for row in rows:
        when = row.event.time.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        say(f"{row.event.id:36}  {row.output:12}  {row.event.short_type:16}  {row.event.model:20}  {row.state:9}  "
            f"{row.attempts:>5}  {when:24}  {row.last_error or ''}")
    return 0


def check_outputs(config: WatcherConfig) -> list[str]:
    """``check-config``: reach every output (no event sent); the names of those that failed."""
    if config.events is None:
        return []
    from watcher.events.outputs import make_output

    add_secrets(config.events.secret_values())
    failed = []
    for out in config.events.outputs:
        try:
            output = make_output(out, config.ui_url)
            problem = output.check()
            output.close()
        except Exception as exc:  # noqa: BLE001 - a broken output is a finding, not a crash
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            log.info("events_output_ok", output=out.name, type=out.type)
        else:
            log.error("events_output_unreachable", output=out.name, type=out.type, error=problem)
            say_error(f"events output {out.name} ({out.type}) unreachable: {problem}")
            failed.append(f"events_output:{out.name}")
    return failed

