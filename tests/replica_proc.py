"""One replica of a group as its own process, for the kill -9 test: rebalance and acquire every
``--every`` seconds, printing the models it leads as one JSON line per round."""

from __future__ import annotations

import argparse
import json
import sys
import time

from watcher.config import HaConfig
from watcher.obs.environment import apply_mlflow_environment
from watcher.service.leader import Leader


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lock-url", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--models", required=True, help="comma-separated")
    parser.add_argument("--every", type=float, default=0.3)
    args = parser.parse_args()
    apply_mlflow_environment()  # the process start, as the CLI's
    models = args.models.split(",")
    leader = Leader(HaConfig(lock_url=args.lock_url, group=args.group))
    while True:
        leader.rebalance(models)
        held = sorted(m for m in models if leader.acquire(m))
        print("HELD " + json.dumps({"replica": leader.replica, "held": held}), flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
