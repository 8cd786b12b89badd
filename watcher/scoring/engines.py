"""The built-in scoring engines by name, and stopping the ones that were started.

Spark's module is imported only when a watch chooses ``engine: spark`` (pyspark is an extra); if it
was ever imported, :func:`stop_engines` stops its session (a JVM and its workers) at shutdown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from handlers.scoring import ScoringRequest, ScoringResult, batch_score

Scorer = Callable[[ScoringRequest], ScoringResult]
SPARK_MODULE = "handlers.spark_scoring"


def engine_handler(engine: str) -> Scorer:
    """The built-in scorer of ``scoring.engine``."""
    if engine == "spark":
        from handlers import spark_scoring

        return spark_scoring.spark_score
    return batch_score


def stop_engines() -> None:
    """Stop the Spark session if the Spark engine was ever loaded (a no-op without a session)."""
    spark = sys.modules.get(SPARK_MODULE)
    if spark is not None:
        spark.stop_session()
