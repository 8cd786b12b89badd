"""``make demo``: the whole lifecycle on the embedded default (a local SQLite store, no server).

1. Train three runs with the seed's pattern-1 code: good, shuffled labels, no recall metric.
2. ``registry-watcher once``: the good run is registered and staged, the other two rejected.
3. ``promote`` the staging version to production; the watcher scores it (deploy-model pattern).
4. Train a better run, register it, promote it (a second promotion that scores again).
5. ``rollback``: production goes back to the first version, which is scored again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "workdir"
CONFIG = WORK / "watcher.yaml"
sys.path.insert(0, str(ROOT))

CONFIG_TEXT = """\
tracking_uri: sqlite:///mlflow.db   # a local store beside this file (there is no default: it is written on purpose)
poll_interval_seconds: 10
watches:
  - experiment: quickbite_churn
    model_name: customer_churn_model
    artifact_path: model
    gates:
      - metric: recall
        min: 0.2
      - metric: precision
        min: 0.05
      - features: [orders_last_30d, avg_delivery_delay_min, complaints_90d, discount_usage_rate,
                   tenure_days, support_tickets_30d, crisis_region, app_sessions_7d]
      - champion: recall
        min_delta: 0.0
    tags:
      deployment_mode: batch_inference_only
      known_limitation: extreme_class_imbalance
    staging_alias: staging
    production_alias: production
    scoring:
      input: data/customer_data_scoring.csv
      output_dir: predictions
      experiment: quickbite_scoring
"""


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def cli(*args: str) -> list[dict]:
    """Run the real CLI; show its human output, keep its JSON log lines for the summary."""
    env = {**os.environ, "REGISTRY_WATCHER_USER": "demo-user"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", "watcher", *args, "--config", str(CONFIG)],
                          capture_output=True, text=True, cwd=WORK, env=env)
    log_lines = [json.loads(line) for line in (proc.stdout if args[0] == "once" else proc.stderr).splitlines()
                 if line.startswith("{")]
    with open(WORK / "watcher.log", "a") as log:
        log.writelines(json.dumps(line) + "\n" for line in log_lines)
    if args[0] != "once" and proc.stdout:
        print(proc.stdout.rstrip())
    if args[0] != "once" and proc.returncode != 0:
        print("\n".join(line for line in proc.stderr.splitlines() if not line.startswith("{")))
    if proc.returncode not in (0, 1):
        print(proc.stdout, proc.stderr)
        raise SystemExit(f"registry-watcher {args[0]} failed with exit {proc.returncode}")
    return log_lines


def show(lines: list[dict]) -> None:
    for line in lines:
        event = line["event"]
        if event == "run_registered":
            print(f"  REGISTERED  run {line['run_id'][:8]} ({line.get('run_name')}) -> v{line['version']}"
                  f"{'  staging -> v' + line['version'] if line.get('staging_moved') else ''}")
        elif event == "run_rejected":
            print(f"  REJECTED    run {line['run_id'][:8]} ({line.get('run_name')}): {line['reason']}")
        elif event in ("scoring_completed", "scoring_failed", "production_alias_changed"):
            detail = {k: line.get(k) for k in ("version", "scored_rows", "output", "error") if line.get(k)}
            print(f"  {event.upper():24} {detail}")


def train(variant: str, seed: int, rows: int = 1500) -> None:
    from demo.churn import train_run

    run_id = train_run("quickbite_churn", variant, seed=seed, rows=rows, n_estimators=50)
    print(f"  trained {variant:10} run {run_id[:8]}")


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True)
    CONFIG.write_text(CONFIG_TEXT)
    os.chdir(WORK)
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    import mlflow

    from demo.churn import customer_data

    mlflow.set_tracking_uri(f"sqlite:///{WORK / 'mlflow.db'}")
    customer_data(rows=20_000, seed=99, label=False).to_csv(WORK / "data" / "customer_data_scoring.csv", index=False)

    banner("1. training: the seed's pattern-1 code, three runs")
    train("good", 1)
    train("shuffled", 2)
    train("no_recall", 3)

    banner("2. registry-watcher once: gates, registration, staging")
    show(cli("once"))

    banner("3. promote staging to production, and the watcher scores it")
    cli("promote", "--model", "customer_churn_model", "--reason", "first release after review")
    show(cli("once"))

    banner("4. a retrained model: registered, staged, promoted (second promotion)")
    train("good", 4, rows=6000)  # more data: better recall, so it beats the champion
    show(cli("once"))
    cli("promote", "--model", "customer_churn_model", "--reason", "retrained on fresh data")
    show(cli("once"))

    banner("5. rollback to the previous production version, scored again")
    cli("rollback", "--model", "customer_churn_model", "--reason", "demo: pretend v2 misbehaves")
    show(cli("once"))

    banner("where everything is")
    cli("status")
    print()
    cli("history", "--model", "customer_churn_model")
    print(f"\n  tracking store : sqlite:///{WORK / 'mlflow.db'}  (mlflow ui --backend-store-uri sqlite:///{WORK / 'mlflow.db'})")
    print(f"  config         : {CONFIG}")
    print(f"  predictions    : {WORK / 'predictions'}")
    for path in sorted((WORK / "predictions").rglob("predictions-*")):
        print(f"                   {path.relative_to(WORK)}")
    print(f"  watcher log    : {WORK / 'watcher.log'} (JSON lines)")


if __name__ == "__main__":
    main()
