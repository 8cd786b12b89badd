"""The Spark scoring engine (``scoring.engine: spark``): ``mlflow.pyfunc.spark_udf`` on a Spark session.

Same protocol as :func:`handlers.scoring.batch_score`: ``spark_score(request) -> ScoringResult``,
raising :class:`handlers.scoring.ScoringError` (naming the file and the columns) for a bad input.

* **One session, lazily.** Starting a session costs 10-20 s, so it is created on the first Spark
  scoring and reused; :func:`stop_session` stops it (the daemon calls it on SIGTERM). Before the
  JVM starts, ``PYSPARK_PYTHON`` is set to ``spark.pyspark.python`` if the config gives it, else
  kept if set, else this interpreter: otherwise Python workers run ``python3`` from PATH and fail
  on a venv install; for a local master ``SPARK_LOCAL_IP`` defaults to 127.0.0.1, else the driver binds
  to the machine's external address.
* **Input.** Any path, glob or URI Spark reads (``s3a://``, ``hdfs://``, ``dbfs:/``): CSV (header,
  inferred schema) when the name ends in ``.csv``/``.csv.gz``, else Parquet (a file, a glob or a
  dataset directory). The signature's required columns are checked against the DataFrame's
  columns before any prediction.
* **Output.** ``output_dir/<model>/v<version>/predictions-<UTC>.parquet/``, a Parquet dataset of
  the input columns plus ``prediction``. On a local filesystem it is written to a hidden
  ``.predictions-<UTC>.parquet.partial/`` and renamed when the Spark job has committed, so a crash
  mid-write leaves no complete-looking dataset (stale partials are removed by the next scoring).
  On a remote URI (no atomic rename on object stores) it is written in place and is complete
  only when Spark's committer has written its ``_SUCCESS`` marker, which is checked here.
* **Rows.** ``scored_rows`` is counted from the written dataset's Parquet footers (pyarrow on a
  local folder, ``spark.read.parquet(out).count()`` on a URI; neither reads column data), not by a
  second pass over the input and not by an accumulator, which a retried task would count twice.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers import spark_logs
from handlers.scoring import ScoringError, ScoringRequest, ScoringResult, _columns_named
from watcher.config import ScoringConfig, SparkConfig, is_uri
from watcher.obs.logs import get_logger
from watcher.store.codec import truncate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger("watcher.spark")
BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
"""Rows per Arrow batch, i.e. per ``predict`` call in a worker: ``scoring.chunk_rows`` unless conf sets it."""
_lock = threading.Lock()
_session: SparkSession | None = None


def _is_local_master(config: SparkConfig) -> bool:
    master = config.master or config.conf.get("spark.master") or os.environ.get("MASTER")
    if master is None:  # the builder's own default, unless spark-submit already started the JVM
        return "PYSPARK_GATEWAY_PORT" not in os.environ
    return master.startswith("local")


def get_session(config: SparkConfig | None = None) -> SparkSession:
    """The process's Spark session, created on the first call with ``config`` and reused after."""
    global _session
    config = config or SparkConfig()
    with _lock:
        if _session is not None:
            return _session
        from pyspark.sql import SparkSession

        # pyspark hands PYSPARK_PYTHON (not the spark.pyspark.python conf) to the workers it starts
        if "spark.pyspark.python" in config.conf:
            os.environ["PYSPARK_PYTHON"] = config.conf["spark.pyspark.python"]
        else:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if _is_local_master(config):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings = {"spark.app.name": "registry-watcher", "spark.ui.showConsoleProgress": "false", **config.conf}
        if config.master:
            settings["spark.master"] = config.master
        _launch_jvm(settings)
        builder = SparkSession.builder
        for key, value in settings.items():
            builder = builder.config(key, value)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main else None
        _session = builder.getOrCreate()
        if main and previous is not None:  # pyspark replaces SIGINT; the daemon's handler stays
            signal.signal(signal.SIGINT, previous)
        log.info("spark_session_started", master=_session.sparkContext.master,
                 spark_version=_session.version, app_id=_session.sparkContext.applicationId)
        return _session


def _launch_jvm(settings: dict[str, str]) -> None:
    """Start Spark's JVM (once per process) with its stdout/stderr turned into log events."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # already running, or spark-submit started it (its output is the launcher's)
    conf = SparkConf().setAll(list(settings.items()))
    write_fd = spark_logs.forward_output()
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": write_fd, "stderr": write_fd})  # type: ignore[no-untyped-call]
    finally:
        os.close(write_fd)
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)


def stop_session() -> None:
    """Stop the session if one was started (SIGTERM, end of tests); a no-op otherwise."""
    global _session
    with _lock:
        if _session is None:
            return
        session, _session = _session, None
    try:
        session.stop()
    finally:
        _stop_jvm()
        log.info("spark_session_stopped")


def _stop_jvm() -> None:
    """End the JVM this process launched (its Python workers with it); not one spark-submit owns."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if gateway is None or proc is None:
        return
    gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None
    proc.stdin.close()  # the gateway server exits when its stdin closes
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def input_format(path: str) -> str:
    """``csv`` for names ending in .csv or .csv.gz, else ``parquet`` (file, glob or dataset directory)."""
    name = path.rstrip("/").lower()
    return "csv" if name.endswith((".csv", ".csv.gz")) else "parquet"


def read_input(spark: SparkSession, path: str) -> DataFrame:
    """The scoring input as a DataFrame; a missing or unreadable input is a :class:`ScoringError`."""
    from pyspark.errors import AnalysisException

    reader = spark.read
    try:
        if input_format(path) == "csv":
            return reader.option("header", True).option("inferSchema", True).csv(path)
        return reader.parquet(path)
    except AnalysisException as exc:
        reason = "not found" if "PATH_NOT_FOUND" in str(exc) else "unreadable"
        raise ScoringError(f"scoring input {reason}: {path}: {_first_line(exc)}", file=path) from exc


def model_columns(model_uri: str, available: list[str], path: str) -> list[str]:
    """The signature's input columns to pass to the UDF; raises naming any required one missing."""
    from mlflow.models import get_model_info

    schema = get_model_info(model_uri).signature
    inputs = schema.inputs if schema is not None else None
    if inputs is None or not inputs.has_input_names():
        return list(available)
    required = [str(spec.name) for spec in inputs.inputs if getattr(spec, "required", True)]
    missing = [c for c in required if c not in available]
    if missing:
        raise ScoringError(f"scoring input {path} lacks columns the model signature needs: {missing}",
                           file=path, columns=missing)
    return [str(spec.name) for spec in inputs.inputs if str(spec.name) in available]


def output_location(config: ScoringConfig, model_name: str, version: str) -> str:
    """``output_dir/<model>/v<version>/predictions-<UTC>.parquet`` (a path or a URI)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{config.output_dir.rstrip('/')}/{model_name}/v{version}/predictions-{stamp}.parquet"


def _remove_stale_partials(folder: Path) -> None:
    for stale in folder.glob(".predictions-*.parquet.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def spark_score(request: ScoringRequest) -> ScoringResult:
    """Score the input with ``spark_udf`` and write a Parquet dataset, complete or not at all."""
    import mlflow.pyfunc

    config = request.config
    spark = get_session(config.spark)
    if not (config.spark and BATCH_ROWS in config.spark.conf):  # rows per predict call, as the pandas engine
        spark.conf.set(BATCH_ROWS, str(config.chunk_rows))
    frame = read_input(spark, config.input)
    columns = model_columns(request.model_uri, frame.columns, config.input)
    env_manager = config.spark.env_manager if config.spark else "local"
    udf = mlflow.pyfunc.spark_udf(spark, request.model_uri, env_manager=env_manager)
    scored = frame.withColumn("prediction", udf(*columns))
    final = output_location(config, request.model_name, request.version)
    local = not is_uri(final) or final.startswith("file:")
    if local:
        final_path = Path(final.removeprefix("file://").removeprefix("file:"))
        final_path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(final_path.parent)
        target = str(final_path.with_name(f".{final_path.name}.partial"))
    else:
        target = final
    try:
        try:
            scored.write.mode("errorifexists").parquet(target)
        except Exception as exc:
            reason = _job_error(exc)
            raise ScoringError(f"scoring input {config.input} failed in Spark: {reason}", file=config.input,
                               columns=_columns_named(reason, frame.columns)) from exc
        if not local and not _has_success_marker(spark, target):
            raise ScoringError(f"Spark reported success but {target}/_SUCCESS is missing", file=config.input)
        rows = _local_rows(target) if local else spark.read.parquet(target).count()
        if rows == 0:
            raise ScoringError(f"scoring input holds no rows: {config.input}", file=config.input)
        if local:
            os.replace(target, final_path)
    finally:
        if local and os.path.exists(target):
            shutil.rmtree(target, ignore_errors=True)
    return ScoringResult(rows=rows, output_path=str(final_path) if local else final)


def _local_rows(folder: str) -> int:
    """Rows in a local Parquet dataset from its files' footers (Spark skips a hidden folder's name)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(part).metadata.num_rows for part in Path(folder).glob("part-*.parquet"))


def _has_success_marker(spark: SparkSession, location: str) -> bool:
    jvm: Any = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{location}/_SUCCESS")
    return bool(path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path))


_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+(?:Error|Exception)|\[[A-Z_.]+\])[:\s].*$")
_JAVA = ("org.apache", "java.", "py4j", "scala.", "at ", "JVM stacktrace")


def _job_error(exc: BaseException) -> str:
    """One line for a failed Spark job: the Python worker's exception (MLflow's ``Error: ...`` part
    when it has one, since its message embeds the whole batch), else the JVM's first error line."""
    lines = [line.strip().removeprefix(": ").removeprefix("Caused by: ") for line in str(exc).splitlines()]
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line)]
    python = [i for i in starts if not lines[i].startswith(_JAVA)]
    if not starts:
        return _first_line(exc)
    first = (python or starts)[-1]
    block: list[str] = []
    for line in lines[first:]:
        if block and line.startswith(_JAVA):
            break
        block.append(line)
    name = block[0].split(":", 1)[0]
    tail = block[-1]
    text = f"{name}: {tail.rsplit('Error: ', 1)[1]}" if len(block) > 1 and "Error: " in tail else " ".join(block)
    return truncate(text, 1000)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
