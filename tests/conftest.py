"""Fixtures: a real ``mlflow server`` subprocess per backend, started once per session.

``tracking_uri`` is parametrized over ``sqlite`` and ``postgres`` (a fresh database on the
machine's PostgreSQL). Where PostgreSQL does not answer, the postgres tests are skipped with the
reason; with ``REGISTRY_WATCHER_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) that skip is a failure.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from watcher.config import WatcherConfig, load_config
from watcher.obs.environment import apply_mlflow_environment
from watcher.obs.logs import STRICT_EVENTS_ENV
from watcher.testing import start_mlflow_server, stop

apply_mlflow_environment()  # the process's MLflow environment (retries, timeouts, no progress bars), as the CLI sets it
os.environ.setdefault(STRICT_EVENTS_ENV, "1")  # an event missing from watcher.obs.events raises (daemons inherit it)
# The servers the tests start need no job runner (MLflow's GenAI jobs: a runner and several huey consumers,
# each a process importing MLflow); webhook delivery is a thread of the server, not a job.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
if os.environ.get("PYTEST_XDIST_WORKER") and not hasattr(sys.modules["__main__"], "__file__"):
    # an xdist worker's __main__ is `python -c` code, which pyspark.sql.connect (imported by MLflow's
    # infer_signature) takes for its doctest runner: without grpc it then calls sys.exit(0)
    sys.modules["__main__"].__file__ = __file__
if os.access("/dev/shm", os.W_OK):  # noqa: S108 - tmp_path in memory: the servers' SQLite files and artifacts
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/dev/shm")  # are written with fsync, slow on a busy disk

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LOCAL_ARTIFACT_ROOT = "_MLFLOW_SERVER_ARTIFACT_ROOT"
"""Where an in-process SQLite store puts new experiments' artifacts (MLflow's default is ./mlruns)."""
in_process = pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)
"""For tests of logic that need no server: an in-process ``sqlite:///`` store."""
FEATURES_YAML = ("[orders_last_30d, avg_delivery_delay_min, complaints_90d, discount_usage_rate,\n"
                 "                   tenure_days, support_tickets_30d, crisis_region, app_sessions_7d]")


def _postgres_database() -> tuple[str | None, str]:
    """Create a fresh database: (its name, "") or (None, why not) when PostgreSQL is unusable."""
    try:
        import psycopg
    except ImportError as exc:
        return None, f"psycopg not installed: {exc}"
    name = f"rw_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(dbname="postgres", connect_timeout=3, autocommit=True, **PG) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # a test database need not wait for the disk at each commit (what it tests is not durability)
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    except Exception as exc:  # noqa: BLE001
        return None, f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}"
    return name, ""


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", connect_timeout=3, autocommit=True, **PG) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server(backend: str, workdir: Path) -> Iterator[str]:
    proc, uri = start_mlflow_server(backend, workdir)
    try:
        yield uri
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``mlflow server`` on SQLite for the whole session (per xdist worker), started on first use."""
    workdir = tmp_path_factory.mktemp("mlflow-sqlite")
    yield from _server(f"sqlite:///{workdir / 'mlflow.db'}", workdir)


def postgres_database_or_skip() -> str:
    """A fresh database's name; the test is skipped with the reason when PostgreSQL is unusable
    (failed instead under ``REGISTRY_WATCHER_REQUIRE_POSTGRES=1``)."""
    database, reason = _postgres_database()
    if database is None:
        if os.environ.get("REGISTRY_WATCHER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here: {reason}")
        pytest.skip(reason)
    return database


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``mlflow server`` on a fresh PostgreSQL database for the whole session (per xdist worker)."""
    database = postgres_database_or_skip()
    workdir = tmp_path_factory.mktemp("mlflow-postgres")
    try:
        yield from _server(f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}", workdir)
    finally:
        _drop_database(database)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a running ``mlflow server`` with the given backend store; ``local`` (asked for with
    ``indirect`` parametrization by tests of logic that needs no server) is an in-process
    ``sqlite:///`` store with its artifacts beside it, no subprocess at all.

    The servers are session fixtures of their own (:func:`sqlite_server`, :func:`postgres_server`):
    a test order that goes back and forth between the backends (xdist) never restarts one.
    """
    if request.param != "local":
        yield request.getfixturevalue(f"{request.param}_server")
        return
    workdir = tmp_path_factory.mktemp("mlflow-local")
    previous = os.environ.get(LOCAL_ARTIFACT_ROOT)
    os.environ[LOCAL_ARTIFACT_ROOT] = str(workdir / "artifacts")  # not ./mlruns in the repo
    yield f"sqlite:///{workdir / 'mlflow.db'}"
    if previous is None:
        os.environ.pop(LOCAL_ARTIFACT_ROOT, None)
    else:
        os.environ[LOCAL_ARTIFACT_ROOT] = previous


LOCK_DB_MODULES = {"test_cli_ops", "test_events_ha", "test_fleet_replicas", "test_leader", "test_probes"}
"""Modules whose replicas join the lock database's groups (``ha``, often the default group)."""
MODULE_FIXTURE_MODULES = {"test_approvals", "test_console_browser", "test_docs", "test_run_events", "test_run_events_plugin", "test_run_events_workers", "test_spark", "test_webhooks"}
"""Modules with an expensive module or session fixture of their own (a server, a Spark JVM, a site build)."""


def _xdist_scope(nodeid: str) -> str:
    """The work unit of a test under ``pytest -n N --dist loadgroup``: ``lock_db`` for the tests of the
    lock database (two replicas of the default group in two tests at once would share their models
    between them), the module for a module with a server of its own (not started twice), else the test."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    if module in LOCK_DB_MODULES:
        return "lock_db"
    return module if module in MODULE_FIXTURE_MODULES else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup`` (``make test``) with the groups of :func:`_xdist_scope`, computed from the
    test ids: xdist's own ``xdist_group`` marks rename the test ids, which pytest 9.2 no longer lets them do."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _xdist_scope(nodeid)

    return Grouped(config, log)


MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True, scope="module")
def _restore_mlflow_uris_of_module() -> Iterator[None]:
    """The same as :func:`_restore_mlflow_uris` around a whole module: a module fixture's
    ``mlflow.set_tracking_uri`` (``test_console_browser``'s ``fleet``) runs before the per-test
    save, so it would otherwise outlive its module and point the worker's later tests (their
    ``train``, the daemons inheriting ``$MLFLOW_TRACKING_URI``) at that module's server."""
    yield from _mlflow_uris_restored()


@pytest.fixture(autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    """Leave MLflow's URIs as the test found them: ``mlflow.set_tracking_uri`` (the ``client``
    fixture, some tests) exports ``$MLFLOW_TRACKING_URI``/``$MLFLOW_REGISTRY_URI``, and the config
    now prefers that variable to the file's ``tracking_uri``, so a stale one would point a later
    test's config (and the daemons it starts) at another test's server.

    Restored after the test rather than deleted before it: the ``client`` fixture sets them on
    purpose (subprocesses inherit them), and a value from the outer environment stays as it was.
    MLflow's own globals are restored too, or its ``set_tracking_uri(same URI)`` in the next test
    would be a no-op that never exports the variable again.
    """
    yield from _mlflow_uris_restored()


def _mlflow_uris_restored() -> Iterator[None]:
    """Save MLflow's URI variables and globals, yield, put them back."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {name: os.environ.get(name) for name in MLFLOW_URI_VARS}
    saved_globals = [(module, attr, getattr(module, attr)) for module, attr in
                     ((tracking_utils, "_tracking_uri"), (registry_utils, "_registry_uri")) if hasattr(module, attr)]
    yield
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for module, attr, value in saved_globals:
        setattr(module, attr, value)


@pytest.fixture()
def client(tracking_uri: str) -> MlflowClient:
    """A client of the session's server, also set as MLflow's global tracking URI."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@pytest.fixture()
def names() -> dict[str, str]:
    """Unique experiment and model names for one test."""
    suffix = uuid.uuid4().hex[:8]
    return {"experiment": f"quickbite_churn_{suffix}", "model": f"customer_churn_model_{suffix}"}


def issue_yaml(tracking_uri: str, experiment: str, model: str, extra_watch: str = "", gates: str = "") -> str:
    """The config from the issue, verbatim but for the URI and the unique names."""
    return f"""\
tracking_uri: {tracking_uri}
poll_interval_seconds: 10
watches:
  - experiment: {experiment}
    model_name: {model}
    artifact_path: model
    gates:
      - metric: recall
        min: 0.2
      - metric: precision
        min: 0.05
      - features: {FEATURES_YAML}
      - champion: recall
        min_delta: 0.0
{gates}    tags:
      deployment_mode: batch_inference_only
      known_limitation: extreme_class_imbalance
    staging_alias: staging
    production_alias: production
{extra_watch}"""


@pytest.fixture()
def make_config(tmp_path: Path, tracking_uri: str, names: dict[str, str]):
    """Write the issue's config (plus extra YAML for the watch) and load it the real way."""

    def build(extra_watch: str = "", gates: str = "", **top: object) -> WatcherConfig:
        text = issue_yaml(tracking_uri, names["experiment"], names["model"], extra_watch, gates)
        text += "".join(f"{k}: {v}\n" for k, v in top.items())
        path = tmp_path / "watcher.yaml"
        path.write_text(text)
        return load_config(path)

    return build


LOCK_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def lock_url() -> str:
    """The machine's PostgreSQL for ``ha`` locks; skipped (failed under ``REGISTRY_WATCHER_REQUIRE_POSTGRES``)
    when it does not answer."""
    import psycopg

    try:
        psycopg.connect(LOCK_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("REGISTRY_WATCHER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here: {exc}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer: {exc}")
    return LOCK_URL
