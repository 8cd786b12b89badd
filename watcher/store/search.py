"""Candidate search: the one ``search_runs`` query a poll makes per experiment, paged.

The server does the filtering: FINISHED runs that ended at or after ``since`` (the cursor minus
the clock-skew overlap) and carry no ``watcher.decision`` yet (``tags.`watcher.decision` IS NULL``,
MLflow 2.x/3.x servers). So an idle poll returns nothing however many decided runs sit inside the
overlap window, and costs the same as a poll of an empty experiment.

A server that refuses ``IS NULL`` (an ``INVALID_PARAMETER_VALUE`` on the first page) is remembered
per process: a warning once, then the plain query, whose decided runs the engine skips itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList

from watcher.obs.logs import get_logger
from watcher.store import keys
from watcher.store.paging import pages

log = get_logger("watcher.search")
UNDECIDED = f"tags.`{keys.DECISION}` IS NULL"
ORDER = ["attributes.end_time ASC", "attributes.start_time ASC"]


class SearchSupport:
    """What this process learned about the server's filter support (lost on restart; harmless)."""

    def __init__(self) -> None:
        self.null_filter = True


def query(since_ms: int, undecided_only: bool, run_filter: str | None = None) -> str:
    """The filter string: finished, ended since the cursor window, optionally undecided and scoped."""
    parts = ["attributes.status = 'FINISHED'", f"attributes.end_time >= {int(since_ms)}"]
    if undecided_only:
        parts.append(UNDECIDED)
    if run_filter:
        parts.append(run_filter)
    return " AND ".join(parts)


def candidate_pages(client: MlflowClient, experiment_id: str, since_ms: int, page_size: int,
                    support: SearchSupport, run_filter: str | None = None) -> Iterator[list[Run]]:
    """Pages of candidate runs, oldest end time first; decided runs are left out where the server can.

    With the ``IS NULL`` filter the result set shrinks as the caller decides runs, so an offset
    page token would skip runs: each page is asked for afresh from the start instead, and runs
    already handed out are never handed out twice (the caller stops its tick at a run it could
    not decide). Without it, the pages follow their tokens (``watcher.store.paging``)."""
    search = partial(client.search_runs, [experiment_id], max_results=page_size, order_by=ORDER)
    if support.null_filter:
        undecided = query(since_ms, True, run_filter)
        try:
            first = search(undecided, page_token=None)
        except MlflowException as exc:
            if exc.error_code != "INVALID_PARAMETER_VALUE":
                raise
            support.null_filter = False
            log.warning("search_null_filter_unsupported", error=str(exc),
                        hint="decided runs inside the overlap window are now filtered by the watcher")
        else:
            yield from _afresh(search, undecided, first)
            return
    yield from (list(page) for page in pages(search, query(since_ms, False, run_filter)))


def _afresh(search: Callable[..., PagedList[Run]], filter_string: str, page: PagedList[Run]) -> Iterator[list[Run]]:
    """The ``IS NULL`` pages: the first page again each time, less the runs already handed out."""
    seen: set[str] = set()
    while True:
        fresh = [run for run in page if run.info.run_id not in seen]
        if not fresh:
            return
        seen.update(run.info.run_id for run in fresh)
        yield fresh
        if not page.token:
            return
        page = search(filter_string, page_token=None)
