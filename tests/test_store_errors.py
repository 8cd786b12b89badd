"""Issue 25, item 6: no private MLflow API.

``is_unreachable`` classifies by exception type, not message text: each case here is
the real exception MLflow raises against a closed port or a tiny local HTTP server (no MLflow
server). The client is MLflow's own, prompt check included: a prompt named as a watch's model is
refused and never written to (an in-process SQLite store).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import psycopg
import pytest
import requests
import sqlalchemy.exc
import urllib3.exceptions
from conftest import in_process
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import DEADLINE_EXCEEDED, TEMPORARILY_UNAVAILABLE

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import Session, reconcile_once
from watcher.store import registry
from watcher.store.client import make_client
from watcher.store.errors import is_unreachable


class _Server(ThreadingHTTPServer):
    status = 200
    body = b"{}"
    hang = 0.0
    drop = False
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        if self.server.drop:  # close without a word: RemoteDisconnected
            self.close_connection = True
            return
        time.sleep(self.server.hang)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """A local HTTP server; MLflow's client with no retry waits and a 1 s timeout."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _error_of(uri: str) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever MLflow raises is the subject
        MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model("m")
    return caught.value


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _uri(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_a_closed_port_is_unreachable(server: _Server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _error_of(f"http://127.0.0.1:{port}")
    assert isinstance(error, MlflowException) and is_unreachable(error)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_status_whose_retries_ran_out_is_unreachable(server: _Server, status: int) -> None:
    """MLflow retries these statuses; a storm that outlasts the retries is an outage, whatever the
    status (urllib3's ``MaxRetryError`` in the chain, as before House II)."""
    server.status, server.body = status, b"<html>bad gateway</html>"
    error = _error_of(_uri(server))
    assert isinstance(error, MlflowException) and is_unreachable(error), repr(error)


def test_a_read_timeout_is_unreachable(server: _Server) -> None:
    server.hang = 3.0
    error = _error_of(_uri(server))
    assert isinstance(error, MlflowException) and is_unreachable(error), repr(error)


def test_a_connection_dropped_without_an_answer_is_unreachable(server: _Server) -> None:
    server.drop = True
    error = _error_of(_uri(server))
    assert isinstance(error, MlflowException) and is_unreachable(error), repr(error)


def test_an_answer_of_the_server_is_not_an_outage(server: _Server) -> None:
    server.status = 404
    server.body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no model m"}'
    error = _error_of(_uri(server))
    assert isinstance(error, RestException) and not is_unreachable(error)
    server.status, server.body = 400, b"<html>bad request</html>"
    assert not is_unreachable(_error_of(_uri(server)))


def test_the_status_decides_and_not_the_text() -> None:
    """Built by hand: what a server says about itself, and text that only looks like an outage."""
    down = RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down for upgrade"})
    assert not is_unreachable(down)  # an answer without retries behind it
    assert not is_unreachable(RestException({"error_code": "DEADLINE_EXCEEDED", "message": "slow"}))
    assert not is_unreachable(MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_unreachable(MlflowException("timeout", error_code=DEADLINE_EXCEEDED))  # in-process store
    assert not is_unreachable(MlflowException("Connection refused, timed out, too many 503 error responses"))
    assert not is_unreachable(RuntimeError("Failed to establish a new connection"))
    assert is_unreachable(ConnectionResetError("peer"))
    answered = requests.Response()
    answered.status_code = 503
    assert not is_unreachable(requests.HTTPError(response=answered))
    exhausted = urllib3.exceptions.MaxRetryError(None, "/api", urllib3.exceptions.ResponseError("too many 500s"))
    assert is_unreachable(exhausted)
    down.__context__ = requests.exceptions.RetryError(exhausted)
    down.__context__.__context__ = exhausted
    assert is_unreachable(down)
    try:  # found in the chain, however deep
        try:
            raise TimeoutError("read")
        except TimeoutError as exc:
            raise ValueError("wrapped") from exc
    except ValueError as outer:
        assert is_unreachable(outer)


def test_a_database_driver_is_unreachable_when_the_connection_itself_failed() -> None:
    """A tracking URI that is the database: psycopg's real error on a closed port carries no
    SQLSTATE (libpq's text only) and is an outage, alone and through SQLAlchemy's wrapper and
    MLflow's ``TEMPORARILY_UNAVAILABLE``; a statement the server refused (a SQLSTATE) is not; a
    driver that chains the socket's ``ConnectionRefusedError`` (pymysql) is one by that cause."""
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", connect_timeout=2)
    assert refused.value.sqlstate is None
    assert is_unreachable(refused.value)
    wrapped = sqlalchemy.exc.OperationalError("connect", {}, refused.value)
    assert is_unreachable(wrapped)
    store = MlflowException(str(wrapped), error_code=TEMPORARILY_UNAVAILABLE)
    store.__cause__ = wrapped
    assert is_unreachable(store)
    answered = psycopg.OperationalError("canceling statement due to statement timeout")
    answered.sqlstate = "57014"  # type: ignore[misc]
    assert not is_unreachable(answered)
    assert not is_unreachable(sqlalchemy.exc.OperationalError("select", {}, answered))
    driver = RuntimeError("Can't connect to server")  # a DBAPI error raised in the socket's handler
    driver.__context__ = ConnectionRefusedError(111, "Connection refused")
    chained = sqlalchemy.exc.OperationalError("connect", {}, driver)
    chained.__cause__ = driver
    assert is_unreachable(chained)


@in_process
def test_a_prompt_named_as_a_watchs_model_is_refused_and_never_written(tracking_uri: str) -> None:
    """MLflow's own prompt check stands (no private override): the watcher neither writes to a
    prompt nor takes it for a model, whether it reaches it by ``ensure_registered_model``, by a
    tick, or by an alias write of its own client."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    prompt = mlflow.genai.register_prompt(name="greeting_prompt", template="Hello {{name}}")
    config = WatcherConfig(tracking_uri=tracking_uri, watches=[WatchConfig(
        experiment="prompt_watch", model_name="greeting_prompt", gates=[{"metric": "recall", "min": 0.0}])])
    client = make_client(config)
    client.create_experiment("prompt_watch")
    with pytest.raises((MlflowException, ValueError), match="greeting_prompt"):
        registry.ensure_registered_model(client, "greeting_prompt")
    report = reconcile_once(client, config, session=Session())
    [watch] = report.watches
    assert watch.poll_failed and "greeting_prompt" in " ".join(watch.errors) and not watch.unreachable
    with pytest.raises(MlflowException, match="not found"):
        client.set_registered_model_alias("greeting_prompt", "staging", "1")
    with pytest.raises(MlflowException, match="not found"):
        client.set_registered_model_tag("greeting_prompt", "registry_watcher.decision", "registered")
    after = mlflow.genai.load_prompt(f"prompts:/greeting_prompt/{prompt.version}")
    assert after.template == "Hello {{name}}" and not after.aliases
    assert client.search_registered_models(filter_string="name='greeting_prompt'") == []
