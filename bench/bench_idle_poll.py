"""Idle poll cost: an experiment holding 10,000 decided runs vs an empty one, same server, same run.

The 10,000 runs are inserted straight into the server's SQLite store through MLflow's own ORM
models (creating them over REST would take minutes), each with a ``watcher.decision`` tag. As in
a team that trains all day, runs end all the time: the newest ``--recent`` (300) ended one a
second up to now, so they sit inside the cursor-overlap window (300 s) that every poll re-reads
for clock skew; the older ones ended a minute apart before that. After one catch-up tick sets the
cursor, the script runs idle polls (``reconcile_once`` over one watch) in alternating blocks and
reports, per poll: HTTP requests, wall time, the watcher's CPU (this process) and the server's
CPU (its uvicorn worker, from /proc). For contrast it also prints a naive full rescan.

    .venv/bin/python bench/bench_idle_poll.py [--runs 10000] [--polls 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlflow  # noqa: E402
import mlflow.utils.rest_utils as rest_utils  # noqa: E402
from common import cpu_seconds, machine, server_worker_pid  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from watcher.config import WatchConfig, WatcherConfig  # noqa: E402
from watcher.engine import Session, reconcile_once  # noqa: E402
from watcher.obs.environment import apply_mlflow_environment  # noqa: E402
from watcher.obs.logs import configure_logging  # noqa: E402
from watcher.store import codec  # noqa: E402
from watcher.store import keys as state  # noqa: E402
from watcher.testing import start_mlflow_server, stop  # noqa: E402

apply_mlflow_environment()  # the watcher process's MLflow environment, as the CLI sets it

REQUESTS = {"n": 0}
_original = rest_utils.http_request


def _counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    REQUESTS["n"] += 1
    return _original(*args, **kwargs)


def seed_history(db_uri: str, artifacts: Path, runs: int, recent: int) -> tuple[str, int]:
    """Create experiments ``empty`` and ``history``, bulk-insert ``runs`` decided runs; returns
    the history experiment id and the newest end time (ms)."""
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(db_uri, str(artifacts))
    store.create_experiment("empty")
    exp_id = store.create_experiment("history")
    now_ms = int(time.time() * 1000)
    old = runs - recent
    first = now_ms - recent * 1000 - old * 60_000
    rows, tags = [], []
    for i in range(runs):
        run_id = uuid.uuid4().hex
        end = first + i * 60_000 if i < old else now_ms - (runs - i) * 1000
        rows.append(SqlRun(run_uuid=run_id, name=f"train-{i}", experiment_id=int(exp_id), user_id="bench",
                           status="FINISHED", start_time=end - 30_000, end_time=end, lifecycle_stage="active",
                           source_type="LOCAL", source_name="", entry_point_name="", source_version="",
                           artifact_uri=f"{artifacts}/{exp_id}/{run_id}/artifacts"))
        tags.append(SqlTag(key="watcher.decision", value="rejected", run_uuid=run_id))
    with store.ManagedSessionMaker() as session:
        session.bulk_save_objects(rows)
        session.bulk_save_objects(tags)
    store.engine.dispose()
    return str(exp_id), max(r.end_time for r in rows)


def measure(client: MlflowClient, configs: dict[str, WatcherConfig], polls: int, worker: int,
            block: int = 10) -> dict[str, dict[str, float]]:
    """Per-poll requests, wall ms, watcher CPU ms and server CPU ms of ``polls`` idle ticks per
    config, in alternating blocks of ``block`` so both see the same server state and load."""
    sessions = {name: Session() for name in configs}
    totals = {name: {"requests": 0.0, "wall_ms": 0.0, "watcher_cpu_ms": 0.0, "server_cpu_ms": 0.0} for name in configs}
    for name, config in configs.items():
        for _ in range(3):  # catch-up tick, then warm-up
            reconcile_once(client, config, session=sessions[name])
    for _ in range(max(1, polls // block)):
        for name, config in configs.items():
            REQUESTS["n"] = 0
            server0, cpu0, wall0 = cpu_seconds(worker), time.process_time(), time.perf_counter()
            for _ in range(block):
                report = reconcile_once(client, config, session=sessions[name])
                assert report.ok and not report.watches[0].registered and not report.watches[0].rejected
            row = totals[name]
            row["wall_ms"] += (time.perf_counter() - wall0) * 1000
            row["watcher_cpu_ms"] += (time.process_time() - cpu0) * 1000
            row["server_cpu_ms"] += (cpu_seconds(worker) - server0) * 1000
            row["requests"] += REQUESTS["n"]
    n = max(1, polls // block) * block
    return {name: {k: v / n for k, v in row.items()} for name, row in totals.items()}


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
    parser.add_argument("--recent", type=int, default=300, help="runs that ended inside the overlap window")
    parser.add_argument("--polls", type=int, default=60)
    args = parser.parse_args()
    configure_logging("WARNING")
    rest_utils.http_request = _counting
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    db_uri = f"sqlite:///{work / 'mlflow.db'}"
    started = time.perf_counter()
    exp_id, newest = seed_history(db_uri, work / "artifacts", args.runs, args.recent)
    print(f"seeded {args.runs} decided runs in {time.perf_counter() - started:.1f}s")
    proc, uri = start_mlflow_server(db_uri, work)
    try:
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        configs = {name: WatcherConfig(tracking_uri=uri, watches=[WatchConfig(experiment=name, model_name=f"m_{name}")])
                   for name in ("empty", "history")}
        # the cursor as the watcher leaves it after deciding those runs: at the newest one's end time
        client.create_registered_model("m_history")
        client.set_registered_model_tag("m_history", state.cursor_key(exp_id),
                                        codec.dump({"end_time": newest, "updated_at": codec.now_iso()}))
        results = measure(client, configs, args.polls, server_worker_pid(proc.pid))
        naive_ms, naive_requests = naive_rescan(client, "history", 200)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    empty, history = results["empty"], results["history"]
    print(f"\nidle poll, mean of {args.polls} per experiment, one watch, SQLite-backed mlflow server ({machine()}):")
    print(f"  {'experiment':40} {'requests':>9} {'wall ms':>8} {'watcher CPU ms':>15} {'server CPU ms':>14}")
    for label, row in (("empty (0 runs)", empty), (f"history ({args.runs} decided, {args.recent} in overlap)", history)):
        print(f"  {label:40} {row['requests']:>9.1f} {row['wall_ms']:>8.1f} {row['watcher_cpu_ms']:>15.1f} "
              f"{row['server_cpu_ms']:>14.1f}")
    ratio = {k: history[k] / empty[k] if empty[k] else float("nan") for k in empty}
    print(f"  ratio history/empty: watcher CPU {ratio['watcher_cpu_ms']:.2f}x, server CPU {ratio['server_cpu_ms']:.2f}x, "
          f"wall {ratio['wall_ms']:.2f}x, requests {ratio['requests']:.2f}x   (target <= 1.2x CPU)")
    print(f"  for contrast, a naive full rescan of history: {naive_requests} requests, {naive_ms:.0f} ms per poll")

if __name__ == "__main__":
    main()
