"""Prometheus metrics of approvals (issue 27): pending requests per model, requests by outcome, and how
far the oldest pending request of a model is into its expiry window (the alert fires past half)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REQUEST_OUTCOMES = ("requested", "approved", "rejected", "expired", "superseded", "withdrawn", "failed", "refused")
"""``requested`` counts new requests; ``approved`` the ones the daemon applied; ``refused`` refused actions."""

PENDING = Gauge("registry_watcher_approvals_pending", "Pending approval requests, by registered model.", ["model"])
REQUESTS = Counter("registry_watcher_approval_requests",
                   "Approval requests and actions by outcome: requested, approved (applied), rejected, expired, "
                   "superseded, withdrawn, failed, refused.", ["outcome"])
PENDING_AGE_RATIO = Gauge(
    "registry_watcher_approval_oldest_pending_age_ratio",
    "Age of the model's oldest pending request as a fraction of its expiry window (0 without one; 1 = expires now).",
    ["model"])


def init_approvals(models: list[str]) -> None:
    """Every label set at 0 (idempotent)."""
    for outcome in REQUEST_OUTCOMES:
        REQUESTS.labels(outcome=outcome)
    for model in models:
        PENDING.labels(model=model)
        PENDING_AGE_RATIO.labels(model=model)


def count_outcome(outcome: str) -> None:
    """Count one request outcome or refusal."""
    REQUESTS.labels(outcome=outcome).inc()


def set_pending_approvals(model: str, pending: int, oldest_ratio: float) -> None:
    """The model's pending requests and how far the oldest is into its expiry window."""
    PENDING.labels(model=model).set(pending)
    PENDING_AGE_RATIO.labels(model=model).set(oldest_ratio)
