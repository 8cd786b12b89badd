"""Spark engine vs pandas engine vs a bare ``pyfunc.load_model(...).predict(...)``, same CSV, same model.

Each side runs in its own child process, one after the other in the same invocation, so the
daemon-side peak RSS (``VmHWM``) is that side's alone. The model is the seed's RandomForest
(100 trees), logged and registered on a local SQLite store, as in ``bench_scoring.py``.

Spark runs on ``local[2]`` (``--master``). Its work happens outside the daemon process: in the JVM
(a child of the daemon) and in the Python workers the JVM forks, which each load the model. So
for Spark three memory figures are printed, honestly labelled: the daemon process's own peak RSS,
the JVM's peak RSS and the peak of the Python workers' summed RSS (both sampled from /proc every
0.2 s, so a short spike can be missed). Spark's wall time is the scoring alone (read, predict,
write, count) with the session already started, as in the daemon, which starts it once; the
session start is printed on its own line.

    .venv/bin/python bench/bench_spark.py [--rows 1000000] [--master 'local[2]']
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM). ``ru_maxrss`` is not used: on Linux it keeps
    the high-water mark of the forking parent, which here holds the whole generated table."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreeSampler(threading.Thread):
    """Peak RSS of this process's descendants from /proc: the JVM, and the Python workers summed."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.jvm_mb = 0.0
        self.workers_mb = 0.0

    @staticmethod
    def _table() -> dict[int, tuple[int, str, float]]:
        table = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                status = Path(f"/proc/{entry}/status").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss_kb = float(fields.get("VmRSS", "0 kB").split()[0])
            table[int(entry)] = (int(fields["PPid"]), cmd, rss_kb / 1024)
        return table

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.2):
            table = self._table()
            descendants, frontier = set(), {me}
            while frontier:
                frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - descendants
                descendants |= frontier
            jvm = sum(rss for pid in descendants for _, cmd, rss in [table[pid]] if "java" in cmd.split(" ")[0])
            workers = sum(rss for pid in descendants for _, cmd, rss in [table[pid]] if "pyspark" in cmd)
            self.jvm_mb, self.workers_mb = max(self.jvm_mb, jvm), max(self.workers_mb, workers)


def child(kind: str, uri: str, csv: str, out_dir: str, master: str) -> None:
    import mlflow
    import pandas as pd

    from watcher.obs.environment import apply_mlflow_environment
    apply_mlflow_environment()  # the watcher process's MLflow environment
    from handlers.scoring import ScoringRequest, batch_score
    from watcher.config import ScoringConfig, SparkConfig

    mlflow.set_tracking_uri(uri)
    baseline = _rss_mb()
    extra: dict[str, float] = {}
    sampler = None
    if kind == "spark":
        from handlers import spark_scoring

        spark_config = SparkConfig(master=master, conf={"spark.ui.enabled": "false"})
        sampler = TreeSampler()
        sampler.start()
        began = time.perf_counter()
        spark_scoring.get_session(spark_config)
        extra["session_seconds"] = time.perf_counter() - began
    start = time.perf_counter()
    if kind == "bare":
        model = mlflow.pyfunc.load_model("models:/bench_model/1")
        rows = len(model.predict(pd.read_csv(csv)))
    else:
        config = ScoringConfig(input=csv, output_dir=out_dir, engine=kind,
                               spark=SparkConfig(master=master) if kind == "spark" else None)
        request = ScoringRequest("bench_model", "1", "production", "models:/bench_model/1", config)
        if kind == "spark":
            rows = spark_scoring.spark_score(request).rows
        else:
            rows = batch_score(request).rows
    seconds = time.perf_counter() - start
    if sampler is not None:
        sampler.stop.set()
        sampler.join()
        extra.update(jvm_peak_rss_mb=sampler.jvm_mb, workers_peak_rss_mb=sampler.workers_mb)
        spark_scoring.stop_session()
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline,
                      **extra}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--child", choices=["bare", "pandas", "spark"])
    parser.add_argument("--uri")
    parser.add_argument("--csv")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.uri, args.csv, args.out, args.master)
        return
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    import warnings

    warnings.filterwarnings("ignore")
    from bench_scoring import prepare

    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        started = time.perf_counter()
        uri, csv = prepare(work, args.rows)
        size_mb = Path(csv).stat().st_size / 2**20
        print(f"prepared {args.rows:,} rows ({size_mb:.0f} MiB CSV) and a 100-tree RandomForest "
              f"in {time.perf_counter() - started:.0f}s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        results = {}
        for kind in ("bare", "pandas", "spark"):
            proc = subprocess.run([sys.executable, __file__, "--child", kind, "--uri", uri, "--csv", csv,
                                   "--out", str(work / "predictions"), "--master", args.master],
                                  capture_output=True, text=True, cwd=work)
            if proc.returncode != 0:
                raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}")
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    labels = {"bare": "bare load_model + read_csv + predict", "pandas": "pandas engine (chunks of 100,000)",
              "spark": f"spark engine ({args.master})"}
    print(f"\n  {'':38} {'wall s':>8} {'rows/s':>10} {'daemon peak RSS MiB':>20}")
    for kind, r in results.items():
        print(f"  {labels[kind]:38} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>10,.0f} {r['peak_rss_mb']:>20.0f}")
    spark, pandas, bare = results["spark"], results["pandas"], results["bare"]
    print(f"\n  spark session start (once per daemon): {spark['session_seconds']:.1f} s")
    print(f"  spark side processes (sampled): JVM peak {spark['jvm_peak_rss_mb']:.0f} MiB, "
          f"Python workers peak {spark['workers_peak_rss_mb']:.0f} MiB summed")
    print(f"  wall time: spark/pandas {spark['seconds'] / pandas['seconds']:.2f}x, "
          f"spark/bare {spark['seconds'] / bare['seconds']:.2f}x, pandas/bare {pandas['seconds'] / bare['seconds']:.2f}x")
    print(f"  daemon peak RSS: spark/pandas {spark['peak_rss_mb'] / pandas['peak_rss_mb']:.2f}x, "
          f"spark/bare {spark['peak_rss_mb'] / bare['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
