"""Scoring handler vs a bare ``pyfunc.load_model(...).predict(...)`` over the same 1,000,000-row CSV.

Each side runs in its own child process, one after the other in the same invocation, so peak
RSS (``ru_maxrss``) is that side's alone. The model is the seed's RandomForest (100 trees),
logged and registered on a local SQLite store. Targets: handler wall time within 1.3x of the bare
predict, and peak memory below it (the handler reads and predicts in chunks and streams the
output to Parquet; the bare predict holds the whole frame).

    .venv/bin/python bench/bench_scoring.py [--rows 1000000] [--chunk-rows 100000]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, uri: str, csv: str, out_dir: str, chunk_rows: int) -> None:
    import mlflow
    import pandas as pd

    from watcher.obs.environment import apply_mlflow_environment
    apply_mlflow_environment()  # the watcher process's MLflow environment
    from handlers.scoring import ScoringRequest, batch_score
    from watcher.config import ScoringConfig

    mlflow.set_tracking_uri(uri)
    baseline = _rss_mb()
    start = time.perf_counter()
    if kind == "bare":
        model = mlflow.pyfunc.load_model("models:/bench_model/1")
        rows = len(model.predict(pd.read_csv(csv)))
    else:
        config = ScoringConfig(input=csv, output_dir=out_dir, chunk_rows=chunk_rows)
        rows = batch_score(ScoringRequest("bench_model", "1", "production", "models:/bench_model/1", config)).rows
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline}))


def prepare(work: Path, rows: int) -> tuple[str, str]:
    import mlflow
    from mlflow import MlflowClient

    from watcher.obs.environment import apply_mlflow_environment
    apply_mlflow_environment()  # the watcher process's MLflow environment
    from demo.churn import customer_data, train_run

    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    csv = work / "customer_data_scoring.csv"
    customer_data(rows=rows, seed=42, label=False).to_csv(csv, index=False)
    run_id = train_run("bench", rows=5000, n_estimators=100)
    client = MlflowClient(uri)
    client.create_registered_model("bench_model")
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    client.create_model_version("bench_model", f"models:/{model_id}", run_id=run_id, model_id=model_id)
    return uri, str(csv)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--child", choices=["bare", "handler"])
    parser.add_argument("--uri")
    parser.add_argument("--csv")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.uri, args.csv, args.out, args.chunk_rows)
        return
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    import warnings

    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    try:
        started = time.perf_counter()
        uri, csv = prepare(work, args.rows)
        size_mb = Path(csv).stat().st_size / 2**20
        print(f"prepared {args.rows:,} rows ({size_mb:.0f} MiB CSV) and a 100-tree RandomForest "
              f"in {time.perf_counter() - started:.0f}s")
        results = {}
        for kind in ("bare", "handler"):
            proc = subprocess.run([sys.executable, __file__, "--child", kind, "--uri", uri, "--csv", csv,
                                   "--out", str(work / "predictions"), "--chunk-rows", str(args.chunk_rows)],
                                  capture_output=True, text=True, check=True, cwd=work)
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n  {'':34} {'wall s':>8} {'rows/s':>10} {'peak RSS MiB':>13} {'(after imports)':>16}")
    labels = {"bare": "bare load_model + read_csv + predict", "handler": f"scoring handler (chunks of {args.chunk_rows:,})"}
    for kind, r in results.items():
        print(f"  {labels[kind]:34} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>10,.0f} "
              f"{r['peak_rss_mb']:>13.0f} {r['baseline_rss_mb']:>16.0f}")
    bare, handler = results["bare"], results["handler"]
    time_ratio = handler["seconds"] / bare["seconds"]
    mem_ratio = handler["peak_rss_mb"] / bare["peak_rss_mb"]
    print(f"\n  handler/bare: wall time {time_ratio:.2f}x (target <= 1.30x: {'met' if time_ratio <= 1.3 else 'MISSED'}), "
          f"peak RSS {mem_ratio:.2f}x (target < 1.00x: {'met' if mem_ratio < 1 else 'MISSED'})")
    print("  (the handler also writes the input rows plus predictions to Parquet; the bare predict writes nothing)")


if __name__ == "__main__":
    main()
