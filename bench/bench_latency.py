"""Run end -> staging: seconds from a run's end time to its version holding ``staging``.

One ``mlflow server`` (SQLite, loopback), ``poll_interval_seconds: 1``. Each of ``--runs`` runs is
logged with the seed's pattern-1 code (tiny forest), the script waits a random 0-1 s so run ends
fall at random phases of the poll, then ends the run. Measured twice in one go:

* floor: a bare ``MlflowClient`` loop, polling every 1 s, that does only what registration
  physically needs (search, ``create_model_version``, set the alias): no gates, tags or cursor;
* watcher: ``registry-watcher run`` as its own process; the time is the ``staging_alias_moved``
  log event of that run (written after the alias request returned).

Then the same with run events: a second ``mlflow server --app-name registry-watcher`` (the plugin
in ``plugins/mlflow-run-events``) tells the daemon the moment a run ends, and the daemon polls only
every 30 s. Last, the idle cost on that server: its worker's CPU while an idle daemon polls every
1 s, and every 30 s (``--idle-seconds`` each), from /proc.

    .venv/bin/python bench/bench_latency.py [--runs 20] [--idle-seconds 60] [--phases floor,poll,events,idle]

Each latency phase first stages one warm-up run that is not counted (the first registration of a
process also creates the audit experiment and opens its connections), and every phase starts once
the server's start-up is over (its process tree quiet: the job runners import MLflow for ~30 s
after /health answers, and runs measured meanwhile showed 2x outliers).
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import mlflow
from common import (
    LogTail,
    children,
    cpu_seconds,
    epoch,
    events,
    machine,
    median,
    pct,
    server_worker_pid,
    start_daemon,
    wait_for,
    write_config,
)
from mlflow import MlflowClient

from demo.churn import train_run
from watcher.obs.environment import apply_mlflow_environment
from watcher.testing import free_port, start_mlflow_server, stop

apply_mlflow_environment()  # the watcher process's MLflow environment, as the CLI sets it

SECRET = "bench-run-events-secret"


class FloorPoller(threading.Thread):
    """The bare-client floor: poll every second, register each new FINISHED run, move the alias."""

    def __init__(self, client: MlflowClient, experiment_id: str, model: str) -> None:
        super().__init__(daemon=True)
        self.client, self.experiment_id, self.model = client, experiment_id, model
        self.staged: dict[str, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        self.client.create_registered_model(self.model)
        since = int(time.time() * 1000)
        while not self.halt.wait(1.0):
            for run in self.client.search_runs([self.experiment_id], f"attributes.status = 'FINISHED' AND "
                                               f"attributes.end_time >= {since}"):
                if run.info.run_id in self.staged:
                    continue
                model_id = run.outputs.model_outputs[0].model_id
                mv = self.client.create_model_version(self.model, f"models:/{model_id}", run.info.run_id,
                                                      model_id=model_id)
                self.client.set_registered_model_alias(self.model, "staging", mv.version)
                self.staged[run.info.run_id] = time.time()


def one_run(client: MlflowClient, experiment: str, seed: int, rng: random.Random) -> tuple[str, float]:
    """Log a run, wait a random phase, end it; returns (run id, end time in epoch seconds)."""
    run_id = train_run(experiment, rows=300, n_estimators=2, seed=seed, end=False)
    time.sleep(rng.uniform(0, 1))
    mlflow.end_run()
    return run_id, client.get_run(run_id).info.end_time / 1000


def measure_floor(client: MlflowClient, runs: int, rng: random.Random, warmup: int = 1) -> list[float]:
    experiment = "latency-floor"
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    poller = FloorPoller(client, experiment_id, "floor_model")
    poller.start()
    latencies = []
    for i in range(warmup + runs):
        run_id, ended = one_run(client, experiment, i, rng)
        wait_for(lambda: run_id in poller.staged, 30)
        latencies.append(poller.staged[run_id] - ended)
    poller.halt.set()
    return latencies[warmup:]


def measure_watcher(client: MlflowClient, uri: str, work: Path, runs: int, rng: random.Random,
                    poll: float = 1.0, http_port: int | None = None, tag: str = "watcher",
                    warmup: int = 1) -> list[float]:
    experiment = f"latency-{tag}"
    mlflow.set_experiment(experiment)
    log_path = work / f"daemon-{tag}.log"
    extra = (f"http: {{host: 127.0.0.1, port: {http_port}, webhook_secret: {SECRET}}}\n" if http_port else "")
    proc = start_daemon(write_config(work / f"watcher-{tag}.yaml", uri, experiment, f"{tag}_model", poll=poll,
                                     extra=extra), log_path)
    try:
        wait_for(lambda: any(e.get("event") == "poll_completed" or e.get("event") == "experiment_missing"
                             for e in events(log_path)) or proc.poll() is not None, 60)
        latencies = []
        tail = LogTail(log_path)
        for i in range(warmup + runs):
            run_id, ended = one_run(client, experiment, 100 + i, rng)

            def staged() -> float | None:
                return next((epoch(e["timestamp"]) for e in reversed(tail())
                             if e.get("event") == "staging_alias_moved" and e.get("run_id") == run_id), None)

            moved = wait_for(staged, 30 + poll)
            if moved is None:
                raise RuntimeError(f"run {run_id} never reached staging; see {log_path}")
            latencies.append(float(moved) - ended)
        return latencies[warmup:]
    finally:
        proc.terminate()
        proc.wait(30)


def idle_server_cpu(uri: str, server_pid: int, work: Path, poll: float, seconds: float) -> float:
    """The server worker's CPU (ms per s) while an idle daemon polls every ``poll`` seconds."""
    log_path = work / f"idle-{poll:g}.log"
    proc = start_daemon(write_config(work / f"idle-{poll:g}.yaml", uri, "latency-run-events", "run-events_model",
                                     poll=poll), log_path)
    try:
        wait_for(lambda: any(e.get("event") == "watcher_started" for e in events(log_path)), 60)
        time.sleep(2 * min(poll, 5))  # past start-up and its first poll
        worker = server_worker_pid(server_pid)
        before, started = cpu_seconds(worker), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(worker) - before) * 1000 / (time.monotonic() - started)
    finally:
        proc.terminate()
        proc.wait(30)


CLIENT_CASES = ("plain server", "plugin, watcher down (refused)", "plugin, watcher hung (accepts, never answers)")


def quiet(pids: list[int], timeout: float = 120) -> None:
    """Wait until the process trees of ``pids`` use under 2 % of a core over 2 s (start-up done).

    Without this the last server started was still busy (its job runner importing MLflow) and
    alone showed a p95 twice the others', whichever kind it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = [p for pid in pids for p in (pid, *children(pid))]
        before = sum(cpu_seconds(p) for p in tree)
        time.sleep(2)
        if sum(cpu_seconds(p) for p in tree) - before < 0.04:
            return


def measure_client(work: Path, runs: int) -> list[list[float]]:
    """Seconds of ``set_terminated(run, "FINISHED")`` (the write the plugin hooks), ``runs`` times on
    each of three servers side by side, in turn, so all see the same load: a plain one, and two
    with the plugin whose watcher is down (connection refused) or hung (:data:`CLIENT_CASES`)."""
    hung = socket.create_server(("127.0.0.1", 0), backlog=4096)
    servers = []
    try:
        for i, receiver in enumerate((None, free_port(), hung.getsockname()[1])):
            extra = {} if receiver is None else {"app_name": "registry-watcher", "env": {
                "REGISTRY_WATCHER_RUN_EVENTS_URL": f"http://127.0.0.1:{receiver}/webhooks/mlflow",
                "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET}}
            (work / f"client-{i}").mkdir()
            servers.append(start_mlflow_server(f"sqlite:///{work / f'client-{i}' / 'mlflow.db'}", work / f"client-{i}",
                                               timeout_s=180, **extra))  # type: ignore[arg-type]
        clients = [MlflowClient(uri) for _proc, uri in servers]
        experiments = [c.create_experiment("client-cost") for c in clients]
        quiet([proc.pid for proc, _uri in servers])  # every server's start-up (job runners too) is over
        costs: list[list[float]] = [[] for _ in clients]
        for round_ in range(10 + runs):  # the first ten of each are a warm-up, not counted
            for i in (list(range(len(clients)))[round_ % len(clients):] + list(range(len(clients)))[:round_ % len(clients)]):
                client = clients[i]  # each server first, second and third in turn
                run_id = client.create_run(experiments[i]).info.run_id
                started = time.perf_counter()
                client.set_terminated(run_id, "FINISHED")
                costs[i].append(time.perf_counter() - started)
        return [c[10:] for c in costs]
    finally:
        for proc, _uri in servers:
            stop(proc)
        hung.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--phases", default="floor,poll,events,idle,client",
                        help="comma-separated: floor,poll,events,idle,client")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (servers' and daemons' logs)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    floor: list[float] = []
    watched: list[float] = []
    evented: list[float] = []
    idle_1 = idle_30 = None
    client_costs: list[list[float]] = []
    try:
        if phases & {"floor", "poll"}:
            proc, uri = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", work)
            quiet([proc.pid])
            try:
                mlflow.set_tracking_uri(uri)
                client = MlflowClient(uri)
                floor = measure_floor(client, args.runs, rng) if "floor" in phases else []
                watched = measure_watcher(client, uri, work, args.runs, rng) if "poll" in phases else []
            finally:
                stop(proc)
        if phases & {"events", "idle"}:
            http_port = free_port()
            plugin_work = work / "plugin"
            plugin_work.mkdir()
            proc, uri = start_mlflow_server(
                f"sqlite:///{plugin_work / 'mlflow.db'}", plugin_work, timeout_s=180, app_name="registry-watcher",
                env={"REGISTRY_WATCHER_RUN_EVENTS_URL": f"http://127.0.0.1:{http_port}/webhooks/mlflow",
                     "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET})
            quiet([proc.pid])
            try:
                mlflow.set_tracking_uri(uri)
                client = MlflowClient(uri)
                if "events" in phases:
                    evented = measure_watcher(client, uri, plugin_work, args.runs, rng, poll=30.0,
                                              http_port=http_port, tag="run-events")
                if "idle" in phases:
                    idle_1 = idle_server_cpu(uri, proc.pid, plugin_work, 1.0, args.idle_seconds)
                    idle_30 = idle_server_cpu(uri, proc.pid, plugin_work, 30.0, args.idle_seconds)
            finally:
                stop(proc)
        if "client" in phases:
            client_costs = measure_client(work, 3 * args.runs)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nrun end -> staging, {args.runs} runs each after a warm-up, seed {args.seed} ({machine()}):")
    print(f"  {'':34} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name, values in (("bare-client floor, 1 s poll", floor), ("registry-watcher, 1 s poll", watched),
                         ("registry-watcher + run events, 30 s", evented)):
        if values:
            print(f"  {name:34} {median(values):>7.2f} {pct(values, 95):>7.2f} {max(values):>7.2f}")
    if floor and watched:
        print(f"  ratio watcher/floor: p50 {median(watched) / median(floor):.2f}x, "
              f"p95 {pct(watched, 95) / pct(floor, 95):.2f}x   (targets: p50 <= 1.0 s, p95 <= 1.5 s)")
    if evented:
        print(f"  run events at a 30 s poll: p95 {pct(evented, 95):.2f} s (target <= 0.5 s); in order: "
              + " ".join(f"{v:.2f}" for v in evented))
    if client_costs:
        print(f"\nset_terminated(FINISHED), {len(client_costs[0])} runs each, the servers side by side:")
        for name, costs in zip(CLIENT_CASES, client_costs):
            print(f"  {name:48} p50 {median(costs) * 1000:6.1f} ms  p95 {pct(costs, 95) * 1000:6.1f} ms  "
                  f"({median(costs) / median(client_costs[0]):.2f}x p50, {pct(costs, 95) / pct(client_costs[0], 95):.2f}x p95)")
    if idle_1 is not None and idle_30 is not None:
        print(f"\nidle tracking-server CPU, {args.idle_seconds:g} s each: poll 1 s {idle_1:.1f} ms/s, "
              f"poll 30 s {idle_30:.1f} ms/s: {idle_1 / max(idle_30, 1e-9):.1f}x lower (target >= 10x)")


if __name__ == "__main__":
    main()
