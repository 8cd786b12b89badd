"""Batched reads: one request (or one per page) for every watched model or experiment at once.

An idle poll reads the state of the whole fleet with a fixed number of requests, however many
watches there are (``watcher.engine.snapshot`` uses them); every page is read through
``watcher.store.paging``:

* :func:`models_by_name`: the registered models (aliases, tags, so the cursors) of every watched
  model: one ``search_registered_models`` with ``name IN (...)``, or, for more names than fit a
  URL, every model of the registry in pages of 1,000;
* :func:`undecided_by_experiment`: one ``search_runs`` over every watched experiment id (paged)
  for finished runs without a decision, grouped by experiment;
* :func:`audit_since`: the audit-trail entries started since a time, in pages of 1,000;
* :func:`tagged_experiments`: experiments carrying a tag (discovery), in pages of 1,000.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlflow import MlflowClient
from mlflow.entities import Experiment, ViewType
from mlflow.entities.model_registry import RegisteredModel

from watcher.store import audit
from watcher.store.audit import AuditEntry, AuditTrail
from watcher.store.paging import items
from watcher.store.search import query

MODEL_PAGE = 1000
"""``search_registered_models`` answers at most 1,000 models per page."""
IN_LIMIT = 6000
"""Characters of ``name IN (...)`` that still fit a GET request's URL comfortably (servers cap ~8 KB)."""
RUN_ORDER = ["attributes.end_time ASC", "attributes.start_time ASC"]


def models_by_name(client: MlflowClient, names: Iterable[str]) -> dict[str, RegisteredModel]:
    """Name -> registered model for those of ``names`` that exist (prompts are never returned)."""
    wanted = set(names)
    if not wanted:
        return {}
    listed = ", ".join(f"'{n}'" for n in sorted(wanted))
    simple = len(listed) <= IN_LIMIT and not any("'" in n or "\\" in n for n in wanted)
    filter_string = f"name IN ({listed})" if simple else None
    return {m.name: m for m in items(client.search_registered_models, filter_string, max_results=MODEL_PAGE)
            if m.name in wanted}


def undecided_by_experiment(client: MlflowClient, experiment_ids: Sequence[str], since_ms: int, page_size: int,
                            run_filter: str | None = None) -> dict[str, list[tuple[str, int]]]:
    """Experiment id -> ``(run id, end time)`` pairs of its finished runs without a decision that
    ended at or after ``since_ms``: one paged ``search_runs`` over all of ``experiment_ids``.

    The scan writes nothing, so offset page tokens are safe here (the engine decides the runs
    afterwards, with its own per-experiment search)."""
    grouped: dict[str, list[tuple[str, int]]] = {}
    if not experiment_ids:
        return grouped
    for run in items(client.search_runs, list(experiment_ids), query(since_ms, True, run_filter),
                     max_results=page_size, order_by=RUN_ORDER):
        grouped.setdefault(run.info.experiment_id, []).append((run.info.run_id, run.info.end_time or 0))
    return grouped


def audit_since(client: MlflowClient, experiment: AuditTrail | str, since_ms: int | None) -> list[AuditEntry]:
    """Audit entries (any state) whose run started at or after ``since_ms`` (None: all), newest first."""
    exp_id = audit.trail(experiment).find(client)
    if exp_id is None:
        return []
    filter_string = "" if since_ms is None else f"attributes.start_time >= {int(since_ms)}"
    return [audit.from_run(run) for run in items(client.search_runs, [exp_id], filter_string, max_results=audit.PAGE,
                                                 order_by=["attributes.start_time DESC"])]


def tagged_experiments(client: MlflowClient, tag: str) -> list[Experiment]:
    """Active experiments carrying ``tag`` (any value, the empty one included)."""
    return list(items(client.search_experiments, view_type=ViewType.ACTIVE_ONLY, max_results=MODEL_PAGE,
                      filter_string=f"tags.`{tag}` LIKE '%'"))
