"""The scoring handler: batch prediction with the model behind the production alias.

Protocol: ``callable(request: ScoringRequest) -> ScoringResult``. The engine resolves the alias to
a version number first and passes ``models:/<name>/<version>``, so an alias moving mid-job cannot
mix two versions. It creates the ``model_pattern_scoring`` run around the call, logs
``scored_rows`` and the predictions file, and marks the run FAILED when the handler raises.
Raise :class:`ScoringError` (naming the file and the columns) for a bad input.

The built-in :func:`batch_score` reads CSV or Parquet in chunks, predicts each chunk, and streams
the input rows plus a ``prediction`` column to a temporary file that is renamed when complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from watcher.config import ScoringConfig, scoring_inputs


class ScoringError(Exception):
    """A scoring input problem; ``file`` and ``columns`` say where."""

    def __init__(self, message: str, file: str | None = None, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.columns = columns or []


@dataclass(frozen=True)
class ScoringRequest:
    """What a scoring handler receives."""

    model_name: str
    version: str
    alias: str
    model_uri: str
    config: ScoringConfig


@dataclass(frozen=True)
class ScoringResult:
    """What a scoring handler returns: rows scored and the predictions file written."""

    rows: int
    output_path: str


def _chunks(path: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if path.endswith((".parquet", ".pq")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=chunk_rows)


def _header(path: str) -> list[str]:
    if path.endswith((".parquet", ".pq")):
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def _required_columns(model: PyFuncModel) -> list[str]:
    schema = model.metadata.get_input_schema()  # type: ignore[no-untyped-call]
    if schema is None or not schema.has_input_names():
        return []
    return [str(spec.name) for spec in schema.inputs if getattr(spec, "required", True)]


def check_inputs(files: list[str], required: list[str]) -> None:
    """Fail fast, before any prediction, on a missing/unreadable file or missing columns."""
    if not files:
        raise ScoringError("no scoring input file matches", file=None)
    for path in files:
        if not os.path.isfile(path):
            raise ScoringError(f"scoring input not found: {path}", file=path)
        try:
            header = _header(path)
        except Exception as exc:
            raise ScoringError(f"scoring input unreadable: {path}: {exc}", file=path) from exc
        missing = [c for c in required if c not in header]
        if missing:
            raise ScoringError(f"scoring input {path} lacks columns the model signature needs: {missing}",
                               file=path, columns=missing)


def output_file(config: ScoringConfig, model_name: str, version: str) -> Path:
    """``output_dir/<model>/v<version>/predictions-<UTC timestamp>.<format>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(config.output_dir) / model_name / f"v{version}" / f"predictions-{stamp}.{config.format}"


def batch_score(request: ScoringRequest) -> ScoringResult:
    """The built-in scorer: chunked read, predict, streamed write, atomic rename."""
    config = request.config
    files = scoring_inputs(config.input)
    model = mlflow.pyfunc.load_model(request.model_uri)
    check_inputs(files, _required_columns(model))
    final = output_file(config, request.model_name, request.version)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial")
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for path in files:
            for chunk in _chunks(path, config.chunk_rows):
                try:
                    predictions = model.predict(chunk)
                except MlflowException as exc:
                    raise ScoringError(f"scoring input {path} does not fit the model signature: {exc.message}",
                                       file=path, columns=_columns_named(str(exc.message), list(chunk.columns))) from exc
                out = chunk.assign(prediction=_as_column(predictions))
                if config.format == "csv":
                    out.to_csv(tmp, mode="a", header=rows == 0, index=False)
                else:
                    table = pa.Table.from_pandas(out, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                rows += len(out)
        if writer is not None:
            writer.close()
            writer = None
        if rows == 0:
            raise ScoringError(f"scoring input holds no rows: {files}", file=files[0])
        os.replace(tmp, final)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return ScoringResult(rows=rows, output_path=str(final))


def _as_column(predictions: Any) -> Any:
    if isinstance(predictions, pd.DataFrame):
        return predictions.iloc[:, 0].to_numpy()
    if isinstance(predictions, pd.Series):
        return predictions.to_numpy()
    return predictions


def _columns_named(message: str, columns: list[str]) -> list[str]:
    return [c for c in columns if f"'{c}'" in message or f" {c}" in message or f"{c}." in message]
