"""Outgoing events: seconds from an alias move (and from a run's end) to the event's receipt.

One ``mlflow server --app-name registry-watcher`` (SQLite, the run-events plugin telling the daemon
the moment a run ends) and ``registry-watcher run`` at ``poll_interval_seconds: 1`` with three
outputs: ``http`` to a receiver in this process (signed, Standard Webhooks), ``nats`` to the
machine's JetStream (a stream of its own; a core subscription in this process takes the receipt
time), and ``dead``, an ``http`` output to a port where nothing listens, with ``--backlog`` events
(1,000: one per model, so as many heads to retry) already queued in the outbox before the daemon
starts, and a retry cap of 5 s so that it keeps failing all through the measurement.

Each of ``--runs`` runs (after one warm-up) is ended at a random phase of the poll; the figures:

* move -> receipt: from the ``staging_alias_moved`` log event (written after the alias request
  returned) to the ``alias.moved`` event's arrival at the HTTP receiver and at NATS;
* run end -> receipt: from the run's end time to the ``alias.moved`` and ``run.decided`` events'
  arrival at the HTTP receiver (run events on: the tick starts when the run ends).

    .venv/bin/python bench/bench_events.py [--runs 20] [--backlog 1000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import mlflow
import nats
from bench_latency import one_run, quiet
from common import LogTail, epoch, events, machine, median, pct, start_daemon, wait_for, write_config
from mlflow import MlflowClient

from watcher.config.events import HttpOutputConfig
from watcher.events.db import open_database
from watcher.events.model import OutgoingEvent, event_id, sequence_of
from watcher.events.outbox import Outbox
from watcher.obs.environment import apply_mlflow_environment
from watcher.testing import free_port, start_mlflow_server, stop

apply_mlflow_environment()
SECRET = "bench-events-run-events-secret"
NATS_URL = "nats://127.0.0.1:4222"


class Receipts:
    """(source, type, model) -> [(receipt epoch seconds, data)], filled by the HTTP and NATS listeners."""

    def __init__(self) -> None:
        self._got: dict[tuple[str, str, str], list[tuple[float, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def add(self, source: str, ce_type: str, model: str, body: bytes) -> None:
        at = time.time()
        with self._lock:
            self._got.setdefault((source, ce_type.removeprefix("io.registry-watcher."), model),
                                 []).append((at, json.loads(body)))

    def first(self, source: str, short_type: str, model: str, **match: str) -> float | None:
        with self._lock:
            return next((at for at, data in self._got.get((source, short_type, model), [])
                         if all(str(data.get(k)) == v for k, v in match.items())), None)


def http_receiver(receipts: Receipts) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receipts.add("http", self.headers["ce-type"], unquote(self.headers["ce-subject"]).split("/")[0], body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def nats_listener(receipts: Receipts, subject: str, stop_event: threading.Event) -> threading.Thread:
    """A core NATS subscription on ``<subject>.>`` in a thread of its own (JetStream's stored messages
    are also delivered to core subscribers)."""
    ready = threading.Event()

    async def listen() -> None:
        nc = await nats.connect(NATS_URL)

        async def got(msg: Any) -> None:
            headers = msg.headers or {}
            receipts.add("nats", headers["ce-type"], unquote(headers["ce-subject"]).split("/")[0], msg.data)

        await nc.subscribe(f"{subject}.>", cb=got)
        await nc.flush()
        ready.set()
        while not stop_event.is_set():
            await asyncio.sleep(0.1)
        await nc.close()

    thread = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    thread.start()
    ready.wait(10)
    return thread


def fill_backlog(path: Path, count: int) -> None:
    """``count`` pending ``alias.moved`` events of as many models, owed to the ``dead`` output."""
    outbox = Outbox(open_database(str(path), None))
    first = outbox.first_seen(["dead"], now=0)
    now = datetime.now(timezone.utc)
    backlog = [OutgoingEvent(
        id=event_id("alias.moved", f"backlog:{i}"), type="io.registry-watcher.alias.moved", source="bench",
        subject=f"backlog_{i}", time=now, sequence=sequence_of(int(now.timestamp() * 1000), 1), model=f"backlog_{i}",
        data={"model": f"backlog_{i}", "alias": "staging", "version": "1", "previous_version": None,
              "moved_by": "registry-watcher", "reason": "bench backlog", "model_uri": f"models:/backlog_{i}/1"})
        for i in range(count)]
    dead = HttpOutputConfig(name="dead", url="http://127.0.0.1:9/unused")
    outbox.append(backlog, [dead], first)


def backlog_state(path: Path) -> tuple[int, int]:
    """(pending rows, attempts made) of the ``dead`` output."""
    rows = Outbox(open_database(str(path), None)).rows(output="dead", state="pending", limit=1_000_000)
    return len(rows), sum(r.attempts for r in rows)


def events_block(outbox: Path, receiver: str, subject: str, stream: str, dead_port: int) -> str:
    return (f"events:\n  source: bench\n  outbox_path: {outbox}\n  outputs:\n"
            f"    - {{name: cd, type: http, url: '{receiver}', secret: whsec_{'QkVOQ0g' * 6}}}\n"
            f"    - {{name: bus, type: nats, url: '{NATS_URL}', subject: {subject}, stream: {stream}}}\n"
            f"    - {{name: dead, type: http, url: 'http://127.0.0.1:{dead_port}/gone', timeout_seconds: 2, "
            "retry_max_seconds: 5, max_age_seconds: 86400}\n")


def measure(client: MlflowClient, uri: str, work: Path, http_port: int, runs: int, backlog: int,
            rng: random.Random) -> dict[str, list[float]]:
    receipts = Receipts()
    receiver = http_receiver(receipts)
    tag = uuid.uuid4().hex[:8]
    subject, stream = f"bench.{tag}", f"BENCH_{tag}"
    halt = threading.Event()
    nats_listener(receipts, subject, halt)
    outbox = work / "outbox.sqlite"
    fill_backlog(outbox, backlog)
    experiment, model = "bench-events", "bench_events_model"
    mlflow.set_experiment(experiment)
    extra = (f"http: {{host: 127.0.0.1, port: {http_port}, webhook_secret: {SECRET}}}\n"
             + events_block(outbox, f"http://127.0.0.1:{receiver.server_address[1]}/hook", subject, stream,
                            free_port()))
    log_path = work / "daemon.log"
    proc = start_daemon(write_config(work / "watcher.yaml", uri, experiment, model, poll=1.0, extra=extra), log_path)
    figures: dict[str, list[float]] = {k: [] for k in ("move_http", "move_nats", "end_http_moved", "end_http_decided")}
    try:
        wait_for(lambda: any(e.get("event") == "events_derived" for e in events(log_path)) or proc.poll() is not None,
                 120)
        tail = LogTail(log_path)
        for i in range(1 + runs):
            run_id, ended = one_run(client, experiment, 500 + i, rng)
            moved = wait_for(lambda r=run_id: next((e for e in reversed(tail()) if e.get("event") ==
                                                     "staging_alias_moved" and e.get("run_id") == r), None), 30)
            if not isinstance(moved, dict):
                raise RuntimeError(f"run {run_id} never reached staging; see {log_path}")
            version, at = str(moved["version"]), epoch(moved["timestamp"])
            http_at = wait_for(lambda v=version: receipts.first("http", "alias.moved", model, version=v), 30)
            nats_at = wait_for(lambda v=version: receipts.first("nats", "alias.moved", model, version=v), 30)
            decided_at = wait_for(lambda r=run_id: receipts.first("http", "run.decided", model, run_id=r), 30)
            if not (isinstance(http_at, float) and isinstance(nats_at, float) and isinstance(decided_at, float)):
                raise RuntimeError(f"run {run_id}: an event never arrived (http {http_at}, nats {nats_at}, "
                                   f"decided {decided_at}); see {log_path}")
            if i == 0:
                continue  # the warm-up
            figures["move_http"].append(http_at - at)
            figures["move_nats"].append(nats_at - at)
            figures["end_http_moved"].append(http_at - ended)
            figures["end_http_decided"].append(decided_at - ended)
        pending, attempts = backlog_state(outbox)
        print(f"dead output at the end: {pending} events pending, {attempts} failed attempts made")
        return figures
    finally:
        proc.terminate()
        proc.wait(30)
        halt.set()
        receiver.shutdown()
        asyncio.run(_delete_stream(stream))


async def _delete_stream(stream: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jsm().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server and daemon logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-events-"))
    http_port = free_port()
    proc, uri = start_mlflow_server(
        f"sqlite:///{work / 'mlflow.db'}", work, timeout_s=180, app_name="registry-watcher",
        env={"REGISTRY_WATCHER_RUN_EVENTS_URL": f"http://127.0.0.1:{http_port}/webhooks/mlflow",
             "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET})
    try:
        for _ in range(5):  # a child that exits while its CPU is read: look again
            try:
                quiet([proc.pid])
                break
            except FileNotFoundError:
                continue
        mlflow.set_tracking_uri(uri)
        figures = measure(MlflowClient(uri), uri, work, http_port, args.runs, args.backlog,
                          random.Random(args.seed))
    finally:
        stop(proc)
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\noutgoing events, {args.runs} runs after a warm-up, poll 1 s + run events, {args.backlog} events "
          f"queued for a dead output, seed {args.seed} ({machine()}):")
    print(f"  {'':42} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name, key in (("alias move -> HTTP receiver", "move_http"), ("alias move -> NATS (core subscriber)", "move_nats"),
                      ("run end -> alias.moved at HTTP", "end_http_moved"),
                      ("run end -> run.decided at HTTP", "end_http_decided")):
        values = figures[key]
        print(f"  {name:42} {median(values):>7.2f} {pct(values, 95):>7.2f} {max(values):>7.2f}")
    print(f"  target: p95 <= 0.5 s after the move; move -> HTTP p95 {pct(figures['move_http'], 95):.2f} s, "
          f"-> NATS p95 {pct(figures['move_nats'], 95):.2f} s")


if __name__ == "__main__":
    main()
