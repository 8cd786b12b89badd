"""Candidate search: the one ``search_runs`` query a poll makes per experiment, paged.

The server does the filtering: FINISHED runs that ended at or after ``since`` (the cursor minus
the clock-skew overlap) and carry no ``watcher.decision`` yet (``tags.`watcher.decision` IS NULL``,
MLflow 2.x/3.x servers). So an idle poll returns nothing however many decided runs sit inside the
overlap window, and costs the same as a poll of an empty experiment.

A server that refuses ``IS NULL`` (an ``INVALID_PARAMETER_VALUE`` on the first page) is remembered
per process: a warning once, then the plain query, whose decided runs the engine skips itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from watcher.obs.logs import get_logger
from watcher.store import keys

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
    not decide)."""
    token: str | None = None
    seen: set[str] = set()
    while True:
        try:
            page = client.search_runs([experiment_id], query(since_ms, support.null_filter, run_filter),
                                      max_results=page_size, order_by=ORDER,
                                      page_token=None if support.null_filter else token)
        except MlflowException as exc:
            if not (support.null_filter and token is None and not seen and exc.error_code == "INVALID_PARAMETER_VALUE"):
                raise
            support.null_filter = False
            log.warning("search_null_filter_unsupported", error=str(exc),
                        hint="decided runs inside the overlap window are now filtered by the watcher")
            continue
        if support.null_filter:
            fresh = [run for run in page if run.info.run_id not in seen]
            if not fresh:
                return
            seen.update(run.info.run_id for run in fresh)
            yield fresh
            if not page.token:
                return
            continue
        yield list(page)
        token = page.token
        if not token:
            return
