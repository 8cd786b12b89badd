"""Idle poll cost: an experiment holding 10,000 decided runs vs an empty one, same server, same run.

The 10,000 runs are inserted straight into the server's SQLite store through MLflow's own ORM
models (creating them over REST would take minutes), each with a ``watcher.decision`` tag and
end times one minute apart. After one catch-up tick sets the cursor, the script times idle polls
(``reconcile_once`` over one watch) and counts the HTTP requests each makes. For contrast it also
prints the cost of a naive full rescan (every FINISHED run, every poll).

    .venv/bin/python bench/bench_idle_poll.py [--runs 10000] [--polls 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import watcher  # noqa: F401,E402
import mlflow  # noqa: E402
import mlflow.utils.rest_utils as rest_utils  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from watcher.config import WatchConfig, WatcherConfig  # noqa: E402
from watcher.engine import Session, reconcile_once  # noqa: E402
from watcher.logs import configure_logging  # noqa: E402
from watcher.testing import start_mlflow_server, stop  # noqa: E402

REQUESTS = {"n": 0}
_original = rest_utils.http_request


def _counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    REQUESTS["n"] += 1
    return _original(*args, **kwargs)


def seed_history(db_uri: str, artifacts: Path, runs: int) -> None:
    """Create experiments ``empty`` and ``history`` and bulk-insert ``runs`` decided runs."""
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, str(artifacts))
    store.create_experiment("empty")
    exp_id = store.create_experiment("history")
    now_ms = int(time.time() * 1000)
    first = now_ms - runs * 60_000 - 3_600_000
    rows, tags = [], []
    for i in range(runs):
        run_id = uuid.uuid4().hex
        end = first + i * 60_000
        rows.append(SqlRun(run_uuid=run_id, name=f"train-{i}", experiment_id=int(exp_id), user_id="bench",
                           status="FINISHED", start_time=end - 30_000, end_time=end, lifecycle_stage="active",
                           source_type="LOCAL", source_name="", entry_point_name="", source_version="",
                           artifact_uri=f"{artifacts}/{exp_id}/{run_id}/artifacts"))
        tags.append(SqlTag(key="watcher.decision", value="rejected", run_uuid=run_id))
    with store.ManagedSessionMaker() as session:
        session.bulk_save_objects(rows)
        session.bulk_save_objects(tags)
    store.engine.dispose()


def measure(client: MlflowClient, configs: dict[str, WatcherConfig], polls: int) -> dict[str, tuple[float, float]]:
    """Median wall ms and mean requests of ``polls`` idle ticks per config, interleaved so both
    see the same server state (after one catch-up tick each and a few warm-up polls)."""
    sessions = {name: Session() for name in configs}
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in configs}
    for name, config in configs.items():
        reconcile_once(client, config, session=sessions[name])
    for i in range(polls + 5):
        for name, config in configs.items():
            REQUESTS["n"] = 0
            start = time.perf_counter()
            report = reconcile_once(client, config, session=sessions[name])
            elapsed = (time.perf_counter() - start) * 1000
            assert report.ok and not report.watches[0].registered and not report.watches[0].rejected
            if i >= 5:
                samples[name].append((elapsed, REQUESTS["n"]))
    return {name: (statistics.median(t for t, _ in rows), statistics.mean(n for _, n in rows))
            for name, rows in samples.items()}


def naive_rescan(client: MlflowClient, experiment: str, page_size: int) -> tuple[float, int]:
    """What a homegrown cron does: page through every FINISHED run and check its tags."""
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    REQUESTS["n"] = 0
    start = time.perf_counter()
    token, undecided = None, 0
    while True:
        page = client.search_runs([exp_id], "attributes.status = 'FINISHED'", max_results=page_size, page_token=token)
        undecided += sum("watcher.decision" not in r.data.tags for r in page)
        token = page.token
        if not token:
            break
    return (time.perf_counter() - start) * 1000, REQUESTS["n"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=30)
    args = parser.parse_args()
    configure_logging("WARNING")
    rest_utils.http_request = _counting
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    db_uri = f"sqlite:///{work / 'mlflow.db'}"
    started = time.perf_counter()
    seed_history(db_uri, work / "artifacts", args.runs)
    print(f"seeded {args.runs} decided runs in {time.perf_counter() - started:.1f}s")
    proc, uri = start_mlflow_server(db_uri, work)
    try:
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        configs = {name: WatcherConfig(tracking_uri=uri, watches=[WatchConfig(experiment=name, model_name=f"m_{name}")])
                   for name in ("empty", "history")}
        results = measure(client, configs, args.polls)
        naive_ms, naive_requests = naive_rescan(client, "history", 200)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    (e_ms, e_req), (h_ms, h_req) = results["empty"], results["history"]
    print(f"\nidle poll, median of {args.polls} (one watch, SQLite-backed mlflow server):")
    print(f"  {'experiment':28} {'requests/poll':>14} {'ms/poll':>9}")
    print(f"  {'empty (0 runs)':28} {e_req:>14.1f} {e_ms:>9.1f}")
    print(f"  {f'history ({args.runs} decided runs)':28} {h_req:>14.1f} {h_ms:>9.1f}")
    print(f"  ratio history/empty: requests {h_req / e_req:.2f}x, time {h_ms / e_ms:.2f}x")
    print(f"  for contrast, a naive full rescan of history: {naive_requests} requests, {naive_ms:.0f} ms "
          f"({naive_ms / h_ms:.0f}x the watcher's idle poll)")


if __name__ == "__main__":
    main()
