"""The Spark scoring engine: ``spark_udf`` on ``local[2]`` against the session's ``mlflow server`` (SQLite only).

One Spark session for the module (starting one costs 10-20 s); the model is the seed's pattern-1
RandomForest (``tests/helpers.train``), scored through ``reconcile_once`` after a promote, as the
daemon does it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import issue_yaml
from helpers import captured, events, train, versions_of
from mlflow import MlflowClient

from demo.churn import customer_data
from watcher.config import ConfigError, load_config
from watcher.engine import reconcile_once
from watcher.engine.promotion import promote

pytestmark = [pytest.mark.spark, pytest.mark.integration]
SPARK_BLOCK = ("      engine: spark\n"
               "      spark:\n"
               "        master: local[2]\n"
               "        conf:\n"
               "          spark.ui.enabled: 'false'\n"
               "          spark.sql.shuffle.partitions: '2'\n")


@pytest.fixture(scope="module")
def spark_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's SQLite-backed ``mlflow server``, and the Spark session stopped at the module's end."""
    if importlib.util.find_spec("pyspark") is None:
        if os.environ.get("REGISTRY_WATCHER_REQUIRE_SPARK") == "1":
            pytest.fail('pyspark is required here: pip install "registry-watcher[spark]"')
        pytest.skip('pyspark not installed: pip install "registry-watcher[spark]"')
    from handlers import spark_scoring

    yield request.getfixturevalue("sqlite_server")
    spark_scoring.stop_session()


@pytest.fixture()
def spark_client(spark_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(spark_uri)
    mlflow.set_registry_uri(spark_uri)
    return MlflowClient(tracking_uri=spark_uri, registry_uri=spark_uri)


def _config(tmp_path: Path, uri: str, names: dict[str, str], scoring_input: str):
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml(uri, names["experiment"], names["model"], extra_watch=(
        "    scoring:\n"
        f"      input: {scoring_input}\n"
        "      output_dir: predictions\n"
        f"      experiment: {names['experiment']}_scoring\n" + SPARK_BLOCK)))
    return load_config(path)


def _promoted(client: MlflowClient, config, names: dict[str, str]) -> str:
    train(names["experiment"])
    reconcile_once(client, config)
    [version] = versions_of(client, names["model"])
    promote(client, config.watches[0], str(version.version), "spark test", "alice")
    return str(version.version)


def _scoring_runs(client: MlflowClient, config):
    experiment = client.get_experiment_by_name(config.watches[0].scoring_experiment)
    return client.search_runs([experiment.experiment_id], "")


def test_spark_engine_scores_every_row_once_like_pyfunc_predict(spark_client, names, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    frame = customer_data(rows=20_000, seed=5, label=False)
    frame.insert(0, "customer_id", range(20_000))
    for part in range(4):  # a glob of 4 files: 4 input partitions on 2 cores
        frame.iloc[part * 5000:(part + 1) * 5000].to_csv(data / f"customers-{part}.csv", index=False)
    config = _config(tmp_path, spark_client.tracking_uri, names, "data/customers-*.csv")
    version = _promoted(spark_client, config, names)
    folder = tmp_path / "predictions" / names["model"] / f"v{version}"
    stale = folder / ".predictions-20260101T000000000000Z.parquet.partial"  # left by a kill -9 mid-write
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"half a file")
    with captured() as logs:
        report = reconcile_once(spark_client, config)
    assert report.ok and report.watches[0].scored == [version], report.watches[0].errors
    [run] = _scoring_runs(spark_client, config)
    assert run.info.status == "FINISHED" and run.data.metrics["scored_rows"] == 20_000
    assert run.data.params["engine"] == "spark"
    [output] = list(folder.iterdir())  # the stale partial is gone, and no new one is left
    assert output.name.startswith("predictions-") and output.name.endswith(".parquet") and output.is_dir()
    assert (output / "_SUCCESS").exists() and run.data.tags["watcher.output"] == str(output)
    assert events(logs, "scoring_completed")[0]["output"] == str(output)
    written = pd.read_parquet(output)
    assert list(written.columns) == [*frame.columns, "prediction"]
    assert len(written) == 20_000 and sorted(written["customer_id"]) == list(range(20_000))
    written = written.sort_values("customer_id").reset_index(drop=True)
    expected = mlflow.pyfunc.load_model(f"models:/{names['model']}/{version}").predict(frame)
    assert list(written["prediction"]) == list(expected)


def test_missing_column_is_named_and_the_run_failed(spark_client, names, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    customer_data(rows=500, seed=5, label=False).drop(columns=["tenure_days"]).to_csv(data / "bad.csv", index=False)
    config = _config(tmp_path, spark_client.tracking_uri, names, "data/bad.csv")
    _promoted(spark_client, config, names)
    with captured() as logs:
        report = reconcile_once(spark_client, config, now=1_000_000.0)
    [error] = events(logs, "scoring_failed")
    assert error["file"] == str(data / "bad.csv") and error["columns"] == ["tenure_days"]
    assert "tenure_days" in error["error"] and not events(logs, "scoring_started")[1:]
    assert not report.ok and not report.poll_failed
    [run] = _scoring_runs(spark_client, config)
    assert run.info.status == "FAILED" and "tenure_days" in run.data.tags["watcher.error"]
    assert not (tmp_path / "predictions").exists()  # the columns are checked before any output is made


def test_failure_inside_the_spark_job_leaves_no_dataset(spark_client, names, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    frame = customer_data(rows=400, seed=5, label=False).astype({"tenure_days": object})
    frame.loc[399, "tenure_days"] = "not a number"  # the column becomes a string: the UDF fails in the job
    frame.to_csv(data / "typo.csv", index=False)
    config = _config(tmp_path, spark_client.tracking_uri, names, "data/typo.csv")
    version = _promoted(spark_client, config, names)
    folder = tmp_path / "predictions" / names["model"] / f"v{version}"
    (folder / ".predictions-20260101T000000000000Z.parquet.partial").mkdir(parents=True)  # a kill -9's leftover
    with captured() as logs:
        report = reconcile_once(spark_client, config, now=1_000_000.0)
    [error] = events(logs, "scoring_failed")
    assert not report.ok and error["file"] == str(data / "typo.csv") and error["columns"] == ["tenure_days"]
    assert "tenure_days" in error["error"] and len(error["error"]) < 1200  # the worker's error line, not the JVM trace
    [run] = _scoring_runs(spark_client, config)
    assert run.info.status == "FAILED"
    assert folder.is_dir() and list(folder.iterdir()) == []  # neither the dataset, nor its partial, nor the old one


def test_spark_engine_without_pyspark_is_a_config_error_naming_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml("http://127.0.0.1:5000", "e", "m", extra_watch=(
        "    scoring:\n      input: s3a://bucket/customers/*.parquet\n" + SPARK_BLOCK)))
    with pytest.raises(ConfigError, match=r'watches\.0\.scoring.*pip install "registry-watcher\[spark\]"'):
        load_config(path)


def test_uri_inputs_are_not_made_local_paths(tmp_path):
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark not installed")
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml("http://127.0.0.1:5000", "e", "m", extra_watch=(
        "    scoring:\n      input: s3a://bucket/customers/*.parquet\n      output_dir: dbfs:/predictions\n"
        + SPARK_BLOCK)))
    scoring = load_config(path).watches[0].scoring
    assert scoring.input == "s3a://bucket/customers/*.parquet" and scoring.output_dir == "dbfs:/predictions"
    assert scoring.engine == "spark" and scoring.spark.master == "local[2]"
    assert scoring.spark.conf["spark.ui.enabled"] == "false" and scoring.spark.env_manager == "local"


def test_stop_session_ends_the_jvm(spark_client):
    """Runs last in this module: what the daemon does on SIGTERM."""
    from pyspark import SparkContext

    from handlers import spark_scoring

    jvm = SparkContext._gateway.proc  # noqa: SLF001 - the JVM this process launched
    spark_scoring.stop_session()
    assert jvm.poll() is not None and SparkContext._gateway is None  # noqa: SLF001
    spark_scoring.stop_session()  # a no-op the second time


def test_daemon_shutdown_stops_the_spark_session(monkeypatch, tmp_path):
    import signal
    import threading

    from mlflow import MlflowClient

    from handlers import spark_scoring
    from watcher.service import daemon

    stopped = []
    monkeypatch.setattr(spark_scoring, "stop_session", lambda: stopped.append(True))
    path = tmp_path / "watcher.yaml"
    path.write_text(issue_yaml("http://127.0.0.1:9", "e", "m"))
    config = load_config(path)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    threading.Timer(0.5, signal.raise_signal, (signal.SIGTERM,)).start()
    try:
        assert daemon.run_daemon(MlflowClient("http://127.0.0.1:9"), config) == 0
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert stopped == [True]
