"""Scoring configuration: the batch scoring fired on production alias changes, and its Spark session."""

from __future__ import annotations

import glob as globmod
import importlib.util
import re
from typing import Literal

from pydantic import Field, model_validator

from watcher.config.base import RetryConfig, Strict

SPARK_EXTRA_HINT = 'pip install "registry-watcher[spark]"'


class SparkConfig(Strict):
    """The Spark session used by ``scoring.engine: spark``; created once, lazily, on the first scoring."""

    master: str | None = None
    """Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``); unset: whatever
    ``SparkSession.builder`` picks up from the environment (spark-submit, Databricks-style launches)."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Spark properties passed to the session builder verbatim (e.g. ``spark.executor.memory: 4g``);
    empty by default because the cluster's own defaults usually fit."""
    env_manager: Literal["local", "virtualenv", "conda", "uv"] = "local"
    """``mlflow.pyfunc.spark_udf`` environment for the executors' model; ``local`` reuses the daemon's
    own interpreter (no per-model install); the others rebuild the model's logged environment."""


class ScoringConfig(Strict):
    """Batch scoring fired when the production alias changes (the seed's deploy-model pattern)."""

    input: str
    """CSV or Parquet file, or a glob of them; relative paths resolve against the config folder."""
    output_dir: str = "predictions"
    """Folder for ``<model>/v<version>/predictions-<UTC>.parquet``; relative to the config folder."""
    experiment: str | None = None
    """Experiment for ``model_pattern_scoring`` runs; default ``<watched experiment>-scoring``. It may not
    be a watched experiment (its runs would become candidates)."""
    format: Literal["parquet", "csv"] = "parquet"
    """Predictions file format; parquet keeps dtypes and is ~5x smaller than CSV."""
    chunk_rows: int = Field(100_000, gt=0)
    """Rows read and predicted per chunk; bounds memory (~100k rows x 8 cols is a few MB)."""
    handler: str | None = Field(None, pattern=r"^[\w.]+:[\w.]+$")
    """Custom scoring callable ``package.module:callable``; default is the built-in batch scorer."""
    retry: RetryConfig = RetryConfig(initial_seconds=60.0, max_seconds=3600.0)
    """Backoff for a failed scoring; 1 min to 1 h, since a bad input rarely fixes itself quickly."""
    engine: Literal["pandas", "spark"] = "pandas"
    """``pandas`` (chunked, one machine, no extra install) or ``spark`` (``mlflow.pyfunc.spark_udf``
    on a Spark session; needs the ``spark`` extra); pandas by default because most tables fit one machine."""
    spark: SparkConfig | None = None
    """Session settings for ``engine: spark``; unset means all defaults (master from the environment)."""

    @model_validator(mode="after")
    def _spark_engine(self) -> ScoringConfig:
        if self.engine != "spark":
            return self
        if importlib.util.find_spec("pyspark") is None:
            raise ValueError(f"scoring.engine 'spark' needs pyspark, which is not installed: {SPARK_EXTRA_HINT}")
        if self.format != "parquet":
            raise ValueError("scoring.engine 'spark' writes a Parquet dataset directory; set format: parquet")
        return self


def scoring_inputs(pattern: str) -> list[str]:
    """The files a scoring ``input`` names: the path itself, or the sorted matches of a glob."""
    if any(ch in pattern for ch in "*?["):
        return sorted(globmod.glob(pattern))
    return [pattern]


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def is_uri(value: str) -> bool:
    """True for ``s3a://...``, ``hdfs://...``, ``dbfs:/...``, ``file:/...``: left as written, never made local."""
    return bool(_URI.match(value))
