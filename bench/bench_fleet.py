"""Fleet cost: one real SQLite-backed ``mlflow server``, 1, 100 and 1,000 watches, ratios in one run.

Every watched experiment holds 20 decided runs (inserted straight into the server's SQLite store
through MLflow's own ORM models, with their registered models, before the server starts: creating
20,000 runs over REST would take minutes). For each fleet size the daemon runs as its own process
(``registry-watcher run``, ``poll_interval_seconds: 1``) and, after a warm-up, the script measures
over an idle window:

* requests per second, counted **at the server**: the access-log lines uvicorn writes to the
  server's log (the bench makes no request of its own during the window);
* the watcher's CPU ms/s (its process) and the server's CPU ms/s (its uvicorn worker; job execution
  is off, so there is no other), from /proc;

then finishes ``--latency`` runs one at a time, each in a random experiment of the fleet (a run
with a minimal ``MLmodel`` file and a metric, created beforehand and ended at the moment of the
measurement, at a random phase of the poll), and reports run end -> ``staging_alias_moved`` (the
daemon's own log line) p50/p95.

    .venv/bin/python bench/bench_fleet.py [--sizes 1,100,1000] [--window 15] [--latency 12]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import cpu_seconds, epoch, events, machine, median, pct, server_worker_pid, start_daemon, wait_for  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from watcher.testing import start_mlflow_server, stop  # noqa: E402

RUNS = 20
ACCESS = re.compile(rb'"(GET|POST|PATCH|DELETE|PUT) /')
MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_version: 3.11.0\n"


def seed(db_uri: str, artifacts: Path, experiments: int) -> None:
    """``experiments`` experiments ``fleet-i`` with RUNS decided runs each, and models ``fleet-model-i``."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, str(artifacts))
    now_ms = int(time.time() * 1000)
    rows, tags = [], []
    for i in range(experiments):
        exp_id = store.create_experiment(f"fleet-{i}")
        for j in range(RUNS):
            run_id = uuid.uuid4().hex
            end = now_ms - (RUNS - j) * 60_000
            rows.append(SqlRun(run_uuid=run_id, name=f"train-{j}", experiment_id=int(exp_id), user_id="bench",
                               status="FINISHED", start_time=end - 30_000, end_time=end, lifecycle_stage="active",
                               source_type="LOCAL", source_name="", entry_point_name="", source_version="",
                               artifact_uri=f"{artifacts}/{exp_id}/{run_id}/artifacts"))
            tags.append(SqlTag(key="watcher.decision", value="rejected", run_uuid=run_id))
    with store.ManagedSessionMaker() as session:
        session.bulk_save_objects(rows)
        session.bulk_save_objects(tags)
    store.engine.dispose()
    registry = RegistryStore(db_uri)
    for i in range(experiments):
        registry.create_registered_model(f"fleet-model-{i}")
    registry.engine.dispose()


def write_config(path: Path, uri: str, size: int) -> Path:
    lines = [f"tracking_uri: {uri}", "poll_interval_seconds: 1", "log: {level: INFO, format: json}", "watches:"]
    for i in range(size):
        lines += [f"  - experiment: fleet-{i}", f"    model_name: fleet-model-{i}",
                  "    gates: [{metric: recall, min: 0.0}]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def requests_logged(log: Path) -> int:
    return len(ACCESS.findall(log.read_bytes()))


def idle(daemon_pid: int, worker: int, server_log: Path, window: float) -> dict[str, float]:
    """Requests/s, watcher CPU ms/s and server CPU ms/s over ``window`` idle seconds."""
    r0, w0, s0, t0 = requests_logged(server_log), cpu_seconds(daemon_pid), cpu_seconds(worker), time.monotonic()
    time.sleep(window)
    r1, w1, s1, t1 = requests_logged(server_log), cpu_seconds(daemon_pid), cpu_seconds(worker), time.monotonic()
    span = t1 - t0
    return {"rps": (r1 - r0) / span, "watcher": (w1 - w0) * 1000 / span, "server": (s1 - s0) * 1000 / span}


def latencies(client: MlflowClient, size: int, count: int, log: Path) -> list[float]:
    """Run end -> staging (s) for ``count`` runs, each in a random experiment of the fleet."""
    rng = random.Random(size)
    found: list[float] = []
    for _ in range(count):
        i = rng.randrange(size)
        exp_id = client.get_experiment_by_name(f"fleet-{i}").experiment_id
        run = client.create_run(exp_id, run_name="fresh")
        client.log_text(run.info.run_id, MLMODEL, "model/MLmodel")
        client.log_metric(run.info.run_id, "recall", 0.5)
        time.sleep(rng.uniform(0.0, 1.0))  # a random phase of the 1 s poll
        client.set_terminated(run.info.run_id)
        end = client.get_run(run.info.run_id).info.end_time / 1000
        moved = wait_for(lambda rid=run.info.run_id: next(
            (e for e in events(log) if e.get("event") == "staging_alias_moved" and e.get("run_id") == rid), None), 60)
        if moved is None:
            print(f"  run in fleet-{i} not staged within 60 s", flush=True)
            continue
        found.append(epoch(moved["timestamp"]) - end)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument("--window", type=float, default=15.0, help="idle seconds measured per size")
    parser.add_argument("--latency", type=int, default=12, help="runs timed to staging per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    db_uri = f"sqlite:///{work / 'mlflow.db'}"
    started = time.perf_counter()
    seed(db_uri, work / "artifacts", max(sizes))
    print(f"seeded {max(sizes)} experiments x {RUNS} decided runs in {time.perf_counter() - started:.1f}s", flush=True)
    load = os.getloadavg()
    proc, uri = start_mlflow_server(db_uri, work, env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server_log = work / "server.log"
    results: dict[int, dict[str, float]] = {}
    try:
        client = MlflowClient(uri)
        worker = server_worker_pid(proc.pid)
        for size in sizes:
            log = work / f"daemon-{size}.log"
            daemon = start_daemon(write_config(work / f"fleet-{size}.yaml", uri, size), log)
            try:
                started = time.monotonic()
                wait_for(lambda log=log: any(e.get("event") == "watcher_started" for e in events(log)), 60)
                # warm-up: the first tick looks every experiment up once; wait for the request rate to settle
                last = requests_logged(server_log)
                while time.monotonic() - started < 120:
                    time.sleep(3)
                    now = requests_logged(server_log)
                    if now - last < 6 * 3 and time.monotonic() - started > 6:
                        break
                    last = now
                row = idle(daemon.pid, worker, server_log, args.window)
                times = latencies(client, size, args.latency, log)
                row["p50"], row["p95"] = (median(times), pct(times, 95)) if times else (float("nan"),) * 2
                row["timed"] = len(times)
                results[size] = row
                print(f"  {size:>5} watches: {row['rps']:.1f} req/s, watcher {row['watcher']:.1f} ms/s, "
                      f"server {row['server']:.1f} ms/s, staging p50 {row['p50']:.2f} s p95 {row['p95']:.2f} s "
                      f"({len(times)} runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=60)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    base = results[sizes[0]]
    print(f"\nfleet, idle over {args.window:.0f} s per size, {RUNS} decided runs per experiment, poll 1 s, "
          f"SQLite-backed mlflow server ({machine()}); requests counted in the server's access log; "
          f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"  {'watches':>7} {'req/s':>7} {'x':>6} {'watcher CPU ms/s':>17} {'x':>6} {'server CPU ms/s':>16} {'x':>6} "
          f"{'staging p50 s':>14} {'p95 s':>6}")
    for size, row in results.items():
        print(f"  {size:>7} {row['rps']:>7.1f} {row['rps'] / base['rps']:>6.2f} {row['watcher']:>17.1f} "
              f"{row['watcher'] / base['watcher']:>6.2f} {row['server']:>16.1f} {row['server'] / base['server']:>6.2f} "
              f"{row['p50']:>14.2f} {row['p95']:>6.2f}")
    print("  targets at 1,000 watches (issue 26): req/s, server CPU and watcher CPU <= 3x those of one watch; "
          "staging p95 <= 2 s")


if __name__ == "__main__":
    main()
