"""Run end -> staging: seconds from a run's end time to its version holding ``staging``.

One ``mlflow server`` (SQLite, loopback), ``poll_interval_seconds: 1``. Each of ``--runs`` runs is
logged with the seed's pattern-1 code (tiny forest), the script waits a random 0-1 s so run ends
fall at random phases of the poll, then ends the run. Measured twice in one go:

* floor: a bare ``MlflowClient`` loop, polling every 1 s, that does only what registration
  physically needs (search, ``create_model_version``, set the alias): no gates, tags or cursor;
* watcher: ``registry-watcher run`` as its own process; the time is the ``staging_alias_moved``
  log event of that run (written after the alias request returned).

    .venv/bin/python bench/bench_latency.py [--runs 20]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import mlflow
from common import epoch, events, machine, median, pct, start_daemon, wait_for, write_config
from mlflow import MlflowClient

import watcher  # noqa: F401
from demo.churn import train_run
from watcher.testing import start_mlflow_server, stop


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


def measure_floor(client: MlflowClient, runs: int, rng: random.Random) -> list[float]:
    experiment = "latency-floor"
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    poller = FloorPoller(client, experiment_id, "floor_model")
    poller.start()
    latencies = []
    for i in range(runs):
        run_id, ended = one_run(client, experiment, i, rng)
        wait_for(lambda: run_id in poller.staged, 30)
        latencies.append(poller.staged[run_id] - ended)
    poller.halt.set()
    return latencies


def measure_watcher(client: MlflowClient, uri: str, work: Path, runs: int, rng: random.Random) -> list[float]:
    experiment = "latency-watcher"
    mlflow.set_experiment(experiment)
    log_path = work / "daemon.log"
    proc = start_daemon(write_config(work / "watcher.yaml", uri, experiment, "watched_model"), log_path)
    try:
        wait_for(lambda: any(e.get("event") == "poll_completed" or e.get("event") == "experiment_missing"
                             for e in events(log_path)) or proc.poll() is not None, 60)
        latencies = []
        for i in range(runs):
            run_id, ended = one_run(client, experiment, 100 + i, rng)

            def staged() -> float | None:
                return next((epoch(e["timestamp"]) for e in events(log_path)
                             if e.get("event") == "staging_alias_moved" and e.get("run_id") == run_id), None)

            moved = wait_for(staged, 30)
            if moved is None:
                raise RuntimeError(f"run {run_id} never reached staging; see {log_path}")
            latencies.append(float(moved) - ended)
        return latencies
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    proc, uri = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", work)
    try:
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        floor = measure_floor(client, args.runs, rng)
        watched = measure_watcher(client, uri, work, args.runs, rng)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nrun end -> staging, poll_interval_seconds 1, {args.runs} runs each, seed {args.seed} ({machine()}):")
    print(f"  {'':26} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name, values in (("bare-client floor", floor), ("registry-watcher", watched)):
        print(f"  {name:26} {median(values):>7.2f} {pct(values, 95):>7.2f} {max(values):>7.2f}")
    print(f"  ratio watcher/floor: p50 {median(watched) / median(floor):.2f}x, p95 {pct(watched, 95) / pct(floor, 95):.2f}x"
          f"   (targets: p50 <= 1.0 s, p95 <= 1.5 s)")


if __name__ == "__main__":
    main()
