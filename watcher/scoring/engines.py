"""The built-in scoring engines by name, and stopping the ones that were started.

Spark's module is imported only when a watch chooses ``engine: spark`` (pyspark is an extra);
its session (a JVM and its workers) is stopped by :func:`stop_engines` at shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from handlers.scoring import ScoringRequest, ScoringResult, batch_score

Scorer = Callable[[ScoringRequest], ScoringResult]
_STOPPERS: dict[str, Callable[[], None]] = {}
_LOCK = threading.Lock()


def engine_handler(engine: str) -> Scorer:
    """The built-in scorer of ``scoring.engine``."""
    if engine == "spark":
        from handlers import spark_scoring

        with _LOCK:
            _STOPPERS["spark"] = spark_scoring.stop_session
        return spark_scoring.spark_score
    return batch_score


def stop_engines() -> None:
    """Stop every engine that was started (the Spark session, if any); never raises."""
    with _LOCK:
        stoppers = list(_STOPPERS.values())
    for stop in stoppers:
        try:
            stop()
        except Exception:  # noqa: BLE001, S110 - shutting down: nothing left to report to
            pass
