"""Soak: the daemon's resident memory over ``--minutes`` (default 60) with a run every 10 s.

``registry-watcher run`` as its own process against a SQLite-backed ``mlflow server``; this script
logs a seed-pattern run (tiny forest) every ``--every`` seconds and samples the daemon's RSS from
/proc every 30 s. Growth is measured from the end of a warm-up (``--warmup`` minutes, default 5,
when imports, caches and the first registrations have settled) to the end.

    .venv/bin/python bench/bench_soak.py [--minutes 60] [--every 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
from common import events, machine, rss_mib, start_daemon, wait_for, write_config

from demo.churn import train_run
from watcher.obs.environment import apply_mlflow_environment
from watcher.testing import start_mlflow_server, stop

apply_mlflow_environment()  # the watcher process's MLflow environment, as the CLI sets it


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--every", type=float, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    server, uri = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", work)
    log_path = work / "daemon.log"
    samples: list[tuple[float, float]] = []
    runs = 0
    try:
        mlflow.set_tracking_uri(uri)
        daemon = start_daemon(write_config(work / "watcher.yaml", uri, "soak", "soak_model", poll=2.0), log_path)
        wait_for(lambda: any(e.get("event") in ("poll_completed", "experiment_missing") for e in events(log_path)), 60)
        start = time.monotonic()
        next_run = next_sample = start
        while time.monotonic() - start < args.minutes * 60:
            now = time.monotonic()
            if now >= next_run:
                train_run("soak", rows=300, n_estimators=2, seed=runs)
                runs += 1
                next_run += args.every
            if now >= next_sample:
                samples.append(((now - start) / 60, rss_mib(daemon.pid)))
                next_sample += 30
            time.sleep(0.2)
        registered = sum(1 for e in events(log_path) if e.get("event") == "run_registered")
        daemon.terminate()
        daemon.wait(60)
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)
    warm = next(rss for minute, rss in samples if minute >= args.warmup)
    end = samples[-1][1]
    print(f"\nsoak: {args.minutes:g} min, a run every {args.every:g} s, {runs} runs logged, {registered} registered "
          f"({machine()})")
    print("  minute  RSS MiB")
    for minute, rss in samples[:: max(1, len(samples) // 12)] + [samples[-1]]:
        print(f"  {minute:6.1f}  {rss:7.1f}")
    print(f"  RSS after {args.warmup:g} min warm-up {warm:.1f} MiB, at the end {end:.1f} MiB: "
          f"growth {100 * (end - warm) / warm:+.1f}%   (target <= 5%)")


if __name__ == "__main__":
    main()
