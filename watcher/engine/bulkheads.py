"""Bulkheads in the tick: one watch's failure is that watch's, never the fleet's.

* :func:`resolve`: each watched experiment's id is looked up on its own (an id already known costs
  nothing); one that cannot be read (403, any answer but an outage) fails its watch only.
* :func:`read_fleet`: the fleet's batched read (``watcher.engine.snapshot``); when it fails for a
  reason other than an outage, the batch is split in halves, again and again, so the watches it
  fails for are failed on their own and the rest are read. After :data:`SPLIT_FAILURES` single
  watches failed, the failure is taken as the fleet's (it is not one bad experiment).
* :func:`failed_report`: the report of a watch failed on its own: ``failure`` says why and
  ``failure_kind`` how it is probed (``unreadable``: one ``get_experiment``; ``error``: retried alone).

An unreachable server always raises: an outage is the fleet's, said once by the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

from mlflow import MlflowClient

from watcher.config import WatchConfig
from watcher.engine.report import WatchReport
from watcher.engine.snapshot import Snapshot
from watcher.store.errors import is_unreachable
from watcher.store.experiments import ExperimentIds

SPLIT_FAILURES = 8
"""Single watches a split may fail before the batch's failure is taken as the fleet's."""


def reason_of(exc: BaseException) -> str:
    """The error as said in a watch's reason: MLflow's error code (``PERMISSION_DENIED``) when it has one."""
    return f"{getattr(exc, 'error_code', None) or type(exc).__name__}: {exc}"


def failed_report(watch: WatchConfig, reason: str, kind: str, experiment_id: str | None = None,
                  poll_failed: bool = False) -> WatchReport:
    """A watch failed on its own (``kind``: ``unreadable`` or ``error``)."""
    return WatchReport(watch.model_name, watch.experiment, errors=[reason], poll_failed=poll_failed,
                       failure=reason, failure_kind=kind, experiment_id=experiment_id)


def resolve(client: MlflowClient, watches: Sequence[WatchConfig], known: ExperimentIds
            ) -> tuple[list[WatchConfig], list[WatchReport]]:
    """The watches whose experiment could be looked up (found or missing), and a failed report for
    each one that could not (permission denied, any error but an outage, which raises)."""
    kept: list[WatchConfig] = []
    failed: list[WatchReport] = []
    for watch in watches:
        try:
            known.find(client, watch.experiment)
        except Exception as exc:
            if is_unreachable(exc):
                raise
            failed.append(failed_report(watch, f"the experiment '{watch.experiment}' cannot be read: {reason_of(exc)}",
                                        "unreadable"))
            continue
        kept.append(watch)
    return kept, failed


def read_fleet(read: Callable[[Sequence[WatchConfig]], Snapshot], watches: Sequence[WatchConfig]
               ) -> tuple[Snapshot, list[WatchReport]]:
    """``read(watches)``, split in halves where it fails: the snapshot of the watches it could read
    and a failed report for each one it could not. Raises an outage, or the first failure when more
    than :data:`SPLIT_FAILURES` single watches fail."""
    try:
        return read(watches), []
    except Exception as exc:
        if is_unreachable(exc) or len(watches) < 2:
            raise
        first = exc
    failed: list[WatchReport] = []
    parts = _split(read, watches, failed)
    if len(failed) > SPLIT_FAILURES or not parts:
        raise first
    return merge_snapshots(parts), failed


def _split(read: Callable[[Sequence[WatchConfig]], Snapshot], watches: Sequence[WatchConfig],
           failed: list[WatchReport]) -> list[Snapshot]:
    """The snapshots of both halves (split again where one fails); a single failing watch goes to ``failed``."""
    found: list[Snapshot] = []
    todo = [list(watches[: len(watches) // 2]), list(watches[len(watches) // 2:])]
    while todo and len(failed) <= SPLIT_FAILURES:
        part = todo.pop()
        if not part:
            continue
        try:
            found.append(read(part))
        except Exception as exc:
            if is_unreachable(exc):
                raise
            if len(part) == 1:
                failed.append(failed_report(part[0], f"the fleet's batched read fails for this watch: {reason_of(exc)}",
                                            "unreadable"))
            else:
                todo.extend([part[: len(part) // 2], part[len(part) // 2:]])
    return found


def merge_snapshots(parts: Sequence[Snapshot]) -> Snapshot:
    """One snapshot of several disjoint ones (``busy`` unknown when any part does not know it)."""
    models = {name: model for part in parts for name, model in part.models.items()}
    ids = {name: exp_id for part in parts for name, exp_id in part.experiment_ids.items()}
    busy = None if any(part.busy is None for part in parts) else frozenset().union(
        *(part.busy or frozenset() for part in parts))
    return Snapshot(MappingProxyType(models), MappingProxyType(ids), busy)
