"""The approvals of the configured models as their records make them now: read, verified, settled.

:class:`Board` reads one model's records in one request, drops forged ones (``approval_record_forged``,
said once per tag per process), derives every request's state and writes the daemon's ``outcome`` record
for a request that just expired or was superseded (said once: only the writer of the record logs it).
It keeps the pending counts for the console and the metrics (:meth:`Board.pending_by_model`, no I/O),
and lists what backs a production move (:meth:`Board.backing`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mlflow import MlflowClient

from watcher.approvals.records import ApprovalRecord, cap, load_records
from watcher.approvals.signing import Signer
from watcher.approvals.state import RequestView, request_views
from watcher.config import WatchConfig
from watcher.obs import metrics_approvals as metrics
from watcher.obs.logs import get_logger
from watcher.store import approval_records as store
from watcher.store import keys
from watcher.store.approval_records import RawRecord
from watcher.store.codec import now_iso

log = get_logger("watcher.approvals")
Watches = Callable[[], Sequence[WatchConfig]]


@dataclass(frozen=True)
class Baseline:
    """Where approvals took effect on a model (signed): the newest recorded production move then, and
    the version the watcher's own moves had left production at."""

    entry_id: str
    """The audit entry (run id: not client-chosen like a start time); '' when there was none."""
    own: str | None


@dataclass(frozen=True)
class Backing:
    """What may back a production move of one model: record refs, each bound to what it allows."""

    refs: Mapping[str, tuple[str, str]]
    """``request:<id>`` (approved) and ``break_glass:<id>`` -> (the version, the one audit entry it backs:
    the move named by its signed outcome; '' while its move awaits, when it backs its first move only)."""
    baseline: Baseline | None
    """None: missing or forged (on a model with approval records): nothing before approvals is trusted."""


class Board:
    """The approvals read model of every watch with an ``approval`` block."""

    def __init__(self, client: MlflowClient, watches: Watches, signer: Signer,
                 clock: Callable[[], float]) -> None:
        self.client = client
        self.watches = watches
        self.signer = signer
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._forged: set[tuple[str, str, str]] = set()

    def approval_watches(self) -> list[WatchConfig]:
        """The watches with an ``approval`` block now."""
        return [w for w in self.watches() if w.approval is not None]

    def watch(self, model: str) -> WatchConfig | None:
        """The watch of ``model`` when it has an ``approval`` block."""
        return next((w for w in self.approval_watches() if w.model_name == model), None)

    def _forged_record(self, raw: RawRecord) -> None:
        where = (raw.model, raw.version, raw.key)
        with self._lock:
            if where in self._forged:
                return
            self._forged.add(where)
        log.error("approval_record_forged", model_name=raw.model, version=raw.version, key=raw.key)

    def records(self, model: str) -> list[ApprovalRecord]:
        """The verified records of ``model`` (one request)."""
        return load_records(store.model_records(self.client, model), self.signer, self._forged_record)

    def model_views(self, model: str, *, settle: bool = True) -> list[RequestView]:
        """Every request of ``model`` with its state now, oldest first; ``settle`` writes the outcome
        record of one that just expired or was superseded."""
        now = self.clock()
        found = request_views(self.records(model), now)
        if settle:
            found = [self._settle_view(view, now) for view in found]
        self._count(model, found, now)
        return found

    def _settle_view(self, view: RequestView, now: float) -> RequestView:
        if view.state not in ("expired", "superseded") or view.outcome is not None:
            return view
        req = view.request
        outcome = ApprovalRecord("outcome", req.request_id, req.model, req.model_version, "watcher", now,
                         cap(view.superseded_by or ""), outcome=view.state)
        try:
            wrote = store.append_record(self.client, req.model, req.model_version, outcome.key, outcome.signed(self.signer))
        except LookupError:
            return view  # the version was deleted: nothing to write on
        if wrote:
            metrics.count_outcome(view.state)
            store.show_state(self.client, req.model, req.model_version, view.state, [v.user for v in view.approvals])
            if view.state == "expired":
                log.warning("approval_expired", model_name=req.model, version=req.model_version,
                            request_id=req.request_id, requested_at=now_iso(int(req.at * 1000)))
            else:
                log.info("approval_superseded", model_name=req.model, version=req.model_version,
                         request_id=req.request_id, superseded_by=view.superseded_by)
        return view

    def _count(self, model: str, found: Sequence[RequestView], now: float) -> None:
        pending = [v for v in found if v.state == "pending"]
        ratio = 0.0
        if pending:
            oldest = pending[0].request
            window = max(oldest.expires_at - oldest.at, 1e-9)
            ratio = min(max((now - oldest.at) / window, 0.0), 1.0)
        with self._lock:
            self._pending[model] = len(pending)
        metrics.set_pending_approvals(model, len(pending), ratio)

    def all_views(self, model: str | None = None) -> list[RequestView]:
        """Every request of ``model`` (or of every model with approvals), settled."""
        models = [model] if model is not None else [w.model_name for w in self.approval_watches()]
        return [view for name in models for view in self.model_views(name)]

    def find(self, request_id: str) -> RequestView | None:
        """The request with this id, among every model with approvals."""
        for watch in self.approval_watches():
            for view in self.model_views(watch.model_name):
                if view.id == request_id:
                    return view
        return None

    def pending_by_model(self) -> Mapping[str, int]:
        """Pending requests per model as last read (no I/O: for the console and the metric)."""
        with self._lock:
            return dict(self._pending)

    def backing(self, model: str, records: Sequence[ApprovalRecord] | None = None) -> Backing:
        """What backs a production move of ``model``: approved requests and break-glass records."""
        found = self.records(model) if records is None else list(records)
        refs: dict[str, tuple[str, str]] = {}
        for view in request_views(found, self.clock()):
            if view.state == "approved":  # applied: its move only; else awaiting its move
                refs[f"request:{view.id}"] = (view.model_version, view.outcome.entry_id if view.outcome else "")
        made = {r.request_id: r.entry_id for r in found if r.kind == "outcome" and r.outcome == "applied"}
        for rec in found:
            if rec.kind == "break_glass":
                refs[f"break_glass:{rec.request_id}"] = (rec.model_version, made.get(rec.request_id, ""))
        return Backing(refs, self.signed_baseline(model))

    def signed_baseline(self, model: str) -> Baseline | None:
        """The model's signed approval baseline (None: none, or forged: reported)."""
        raw = store.baseline(self.client, model)
        payload = self.signer.verified(f"baseline:{model}", raw) if raw else None
        if payload is not None and isinstance(payload.get("entry_id"), str):
            own = payload.get("own")
            return Baseline(payload["entry_id"], own if isinstance(own, str) else None)
        if raw:
            self._forged_record(RawRecord(model, "-", keys.APPROVAL_BASELINE, raw))
        return None

    def write_baseline(self, model: str, baseline: Baseline) -> None:
        """Write the model's baseline (signed); only while the model has no approval record."""
        at_ms = int(self.clock() * 1000)
        payload = {"version": 2, "at_ms": at_ms, "entry_id": baseline.entry_id, "own": baseline.own}
        store.set_baseline(self.client, model, self.signer.sign(f"baseline:{model}", payload))
        log.warning("approval_baseline_set", model_name=model)
