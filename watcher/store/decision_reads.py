"""The newest decisions of many experiments at once, for ``status`` over a fleet.

One ``search_runs`` per :data:`CHUNK` experiments, newest end time first, for ``last x chunk`` decided
runs: in that page each experiment's runs are its newest ones (the order is global), so an
experiment with ``last`` runs in it, or any experiment when the page was the last one, is exact.
Only an experiment starved by busier ones in its chunk is asked for on its own. An idle fleet of
1,000 experiments costs 10 requests, not 1,000; the requests go ``workers`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.entities import Run

from watcher.store import keys
from watcher.store.runs import recent_decisions

CHUNK = 100
"""Experiments per batched search (a list MLflow's stores take in one ``IN``)."""
MAX_PAGE = 5000
"""Runs per batched page at most (MLflow allows 50,000; each run carries its tags, metrics, params)."""
DECIDED = f"tags.`{keys.DECISION}` LIKE '%'"
NEWEST = ["attributes.end_time DESC"]
T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]``, ``workers`` calls at a time (each is a request); the first error is raised."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="batch-read") as pool:
        return list(pool.map(fn, items))


def _chunk(client: MlflowClient, ids: Sequence[str], last: int) -> tuple[dict[str, list[Run]], list[str]]:
    """One batched page: each experiment's newest runs in it, and those it may have starved."""
    page = client.search_runs(list(ids), DECIDED, max_results=min(MAX_PAGE, last * len(ids)), order_by=NEWEST)
    found: dict[str, list[Run]] = {i: [] for i in ids}
    for run in page:
        found.setdefault(run.info.experiment_id, []).append(run)
    starved = [i for i in ids if len(found[i]) < last] if page.token else []
    return {i: runs[:last] for i, runs in found.items()}, starved


def recent_decisions_of(client: MlflowClient, experiment_ids: Sequence[str], last: int,
                        workers: int = 4) -> dict[str, list[Run]]:
    """Experiment id -> its newest ``last`` decided runs, newest end time first (every id answered)."""
    ids = list(dict.fromkeys(experiment_ids))
    if last <= 0 or not ids:
        return {i: [] for i in ids}
    chunks = [ids[n:n + CHUNK] for n in range(0, len(ids), CHUNK)]
    result: dict[str, list[Run]] = {}
    starved: list[str] = []
    for found, short in each(lambda c: _chunk(client, c, last), chunks, workers):
        result.update(found)
        starved += short
    result.update(zip(starved, each(lambda i: recent_decisions(client, i, last), starved, workers), strict=True))
    return result
