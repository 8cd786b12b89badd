"""A burst: ``--runs`` runs finished while the daemon was down, drained after it starts.

The watcher's figure runs from spawning ``registry-watcher run`` (imports and start-up included)
to the log line of its last ``run_registered``, with staging on the newest run. The floor is what
a bare client must do anyway for the same runs on the same server: ``create_model_version`` +
one version tag + set the alias, once per run, serially (no search, no gates, no start-up).

    .venv/bin/python bench/bench_burst.py [--runs 60]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
from common import epoch, events, machine, start_daemon, wait_for, write_config
from mlflow import MlflowClient

from demo.churn import train_run
from watcher.obs.environment import apply_mlflow_environment
from watcher.testing import start_mlflow_server, stop

apply_mlflow_environment()  # the watcher process's MLflow environment, as the CLI sets it


def floor(client: MlflowClient, run_ids: list[str]) -> float:
    """Seconds for the serial API floor over ``run_ids``."""
    client.create_registered_model("floor_model")
    sources = []
    for run_id in run_ids:
        model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
        sources.append((run_id, model_id))
    start = time.perf_counter()
    for run_id, model_id in sources:
        mv = client.create_model_version("floor_model", f"models:/{model_id}", run_id, model_id=model_id)
        client.set_model_version_tag("floor_model", mv.version, "source_run", run_id)
        client.set_registered_model_alias("floor_model", "staging", mv.version)
    return time.perf_counter() - start


def watcher_drain(client: MlflowClient, uri: str, work: Path, experiment: str, run_ids: list[str]) -> float:
    """Seconds from spawning the daemon to its last registration of ``run_ids``."""
    log_path = work / "daemon.log"
    config = write_config(work / "watcher.yaml", uri, experiment, "watched_model")
    spawned = time.time()
    proc = start_daemon(config, log_path)
    try:
        def registered() -> list[dict]:
            done = [e for e in events(log_path) if e.get("event") == "run_registered"]
            return done if len(done) >= len(run_ids) else []

        done = wait_for(registered, 600, step=0.05)
        if not done:
            raise RuntimeError(f"the daemon did not register {len(run_ids)} runs; see {log_path}")
        last = max(epoch(e["timestamp"]) for e in done)  # type: ignore[union-attr]
        started = next(epoch(e["timestamp"]) for e in events(log_path) if e.get("event") == "watcher_started")
        first = min(epoch(e["timestamp"]) for e in done)  # type: ignore[union-attr]
        print(f"  daemon: start-up (spawn to watcher_started) {started - spawned:.2f} s, first registration at "
              f"{first - spawned:.2f} s, last at {last - spawned:.2f} s")
    finally:
        proc.terminate()
        proc.wait(30)
    newest = max(run_ids, key=lambda r: client.get_run(r).info.end_time)
    staging = client.get_model_version_by_alias("watched_model", "staging")
    assert staging.run_id == newest, "staging is not on the newest run"
    versions = client.search_model_versions("name='watched_model'")
    assert len(versions) == len(run_ids) == len({v.run_id for v in versions}), "duplicate or missing versions"
    return last - spawned


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    proc, uri = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", work)
    try:
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment = "burst"
        started = time.perf_counter()
        run_ids = [train_run(experiment, rows=300, n_estimators=2, seed=i) for i in range(args.runs)]
        print(f"logged {args.runs} runs in {time.perf_counter() - started:.1f}s (daemon down)")
        floor_s = floor(client, run_ids)
        watcher_s = watcher_drain(client, uri, work, experiment, run_ids)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nburst of {args.runs} runs finished while the daemon was down ({machine()}):")
    print(f"  bare-client serial floor (create + tag + alias) x{args.runs}: {floor_s:6.2f} s")
    print(f"  registry-watcher, spawn to last registration:      {watcher_s:6.2f} s")
    print(f"  ratio watcher/floor: {watcher_s / floor_s:.2f}x   (target <= 1.0x, stretch 0.67x)")


if __name__ == "__main__":
    main()
