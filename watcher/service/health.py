"""What the probes report: the poll loop's heartbeat and each watch's last poll outcome.

The poller writes it; ``/healthz`` and ``/readyz`` (``watcher.service.http``) read it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from watcher.config import WatcherConfig
from watcher.engine import TickReport


@dataclass
class Health:
    """Loop heartbeat and the last poll outcome per watch; written by the poller, read by HTTP."""

    models: list[str]
    liveness_seconds: float
    heartbeat: float = field(default_factory=time.monotonic)
    polling_since: float | None = None
    outcomes: dict[str, bool] = field(default_factory=dict)
    """model name -> whether its last completed poll reached the server."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_config(cls, config: WatcherConfig) -> Health:
        limit = (config.http.liveness_seconds if config.http else None) or max(3 * config.poll_interval_seconds, 30.0)
        return cls([w.model_name for w in config.watches], limit)

    def set_models(self, models: list[str]) -> None:
        """The watched models now (discovery adds and drops them); outcomes of dropped ones are forgotten."""
        with self._lock:
            self.models = list(models)
            self.outcomes = {m: ok for m, ok in self.outcomes.items() if m in models}

    def beat(self) -> None:
        """The loop ran (also when it skipped a poll for backoff)."""
        with self._lock:
            self.heartbeat = time.monotonic()

    def poll_started(self) -> None:
        with self._lock:
            self.heartbeat = self.polling_since = time.monotonic()

    def poll_finished(self, report: TickReport | None, failed: bool) -> None:
        """Record a finished poll; ``report`` None with ``failed`` means the tick itself raised."""
        with self._lock:
            self.heartbeat = time.monotonic()
            self.polling_since = None
            if report is None:
                if failed:
                    self.outcomes = dict.fromkeys(self.models, False)
                return
            for wr in report.watches:
                self.outcomes[wr.model_name] = not wr.poll_failed

    def alive(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            age = time.monotonic() - self.heartbeat
            polling = self.polling_since is not None
        return polling or age < self.liveness_seconds, {"loop_age_seconds": round(age, 3), "polling": polling}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            outcomes = dict(self.outcomes)
        watches = {model: ("ok" if outcomes.get(model) else "failed" if model in outcomes else "pending")
                   for model in self.models}
        return all(state == "ok" for state in watches.values()), {"watches": watches}
