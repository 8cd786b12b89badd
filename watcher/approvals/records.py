"""Approval records: what each one says, where it is stored, and reading them back verified.

A record is one of ``request``, ``approve``/``reject`` (a vote, one per person and request),
``withdraw``, ``outcome`` (the daemon's: ``applied``, ``failed``, ``expired``, ``superseded``) and
``break_glass``. Its tag key is fixed by its kind, request id and voter, and its JSON carries a
``version`` field and the signature (``watcher.approvals.signing``). :func:`load` reads a model's
records, drops (and reports) any whose signature fails or that sits where it does not belong.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields

from watcher.approvals.signing import Signer, actor_hash
from watcher.store.approval_records import RawRecord
from watcher.store.keys import approval_key

FORMAT_VERSION = 1
COMMENT_LIMIT = 1500
"""Characters of a comment or reason kept in a record, so the record stays under MLflow's 5,000-character tag limit."""
VOTES = ("approve", "reject")
OUTCOMES = ("applied", "failed", "expired", "superseded")


@dataclass(frozen=True)
class ApprovalRecord:
    """One signed approval record (all times epoch seconds)."""

    kind: str
    request_id: str
    model: str
    model_version: str
    by: str
    at: float
    comment: str = ""
    """The request's reason, a vote's comment, an outcome's reason."""
    alias: str = ""
    required: int = 0
    expires_at: float = 0.0
    outcome: str = ""
    entry_id: str = ""
    """The audit entry of the move (an ``applied`` outcome, a break-glass record)."""

    @property
    def key(self) -> str:
        """The tag this record is stored under."""
        kind = "vote" if self.kind in VOTES else self.kind
        return approval_key(self.request_id, kind, actor_hash(self.by) if self.kind in VOTES else "")

    def signed(self, signer: Signer) -> str:
        """The tag value: the record's JSON with ``version`` and the signature."""
        return signer.sign(self.key, {"version": FORMAT_VERSION, **asdict(self)})


def new_id() -> str:
    """A fresh request (or break-glass) id."""
    return uuid.uuid4().hex[:16]


def cap(text: str, limit: int = COMMENT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a marker."""
    return text if len(text) <= limit else text[: limit - 14] + " [truncated]"


_FIELDS = {f.name for f in fields(ApprovalRecord)}


def _parse(raw: RawRecord, payload: dict[str, object]) -> ApprovalRecord | None:
    try:
        record = ApprovalRecord(**{k: v for k, v in payload.items() if k in _FIELDS})  # type: ignore[arg-type]
    except TypeError:
        return None
    if record.key != raw.key or record.model != raw.model or record.model_version != raw.version:
        return None  # a signed value moved to another key, version or model
    return record


def load_records(raws: Iterable[RawRecord], signer: Signer, forged: Callable[[RawRecord], None]) -> list[ApprovalRecord]:
    """The records whose signature holds, oldest first; ``forged(raw)`` for every other one."""
    kept = []
    for raw in raws:
        payload = signer.verified(raw.key, raw.value)
        record = _parse(raw, payload) if payload is not None else None
        if record is None:
            forged(raw)
        else:
            kept.append(record)
    return sorted(kept, key=lambda r: (r.at, r.kind, r.by))
