"""The run-events plugin under the MLflow server's real process models: ``mlflow server --workers 4``
(uvicorn, the default in MLflow 3.x) and ``--gunicorn-opts`` (gunicorn, with ``--preload``, so the
app factory runs in the arbiter before it forks).

Each test proves that *every* worker announces the runs it ends, not only the one a client
happens to reach: all workers but one are paused (SIGSTOP), a run is finished over a fresh
connection (only the running worker can accept it), its event must arrive, and the others go on
(SIGCONT), for each worker in turn. A pause lasts well under uvicorn's 5 s health check and
gunicorn's ``--timeout``. What is not tested here (waitress on Windows) is said in
``docs/deployment/run-events.md``.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from test_run_events_plugin import SECRET, Recorder

from watcher.service.webhooks import signature_valid
from watcher.testing import start_mlflow_server, stop

pytestmark = pytest.mark.integration
ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job consumers beside the workers


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _workers(server_pid: int) -> list[int]:
    """The request workers: the children of the uvicorn supervisor or of the gunicorn arbiter."""
    for pid in _children(server_pid):
        if b"uvicorn" in _cmdline(pid) or b"gunicorn" in _cmdline(pid):
            return sorted(p for p in _children(pid) if b"resource_tracker" not in _cmdline(p))
    return []


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202 - a small local poller
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


def _finish(uri: str, run_id: str) -> None:
    """``runs/update`` to FINISHED over a connection of its own (whichever worker is running accepts it)."""
    body = json.dumps({"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)}).encode()
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/runs/update", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Connection": "close"})
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own loopback server
        assert response.status == 200


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _each_worker_announces(proc, uri: str, recorder: Recorder, count: int) -> None:  # noqa: ANN001
    workers = _wait(lambda: len(w := _workers(proc.pid)) == count and w, 120, f"{count} workers")
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(f"workers_{uuid.uuid4().hex[:8]}")
    announced: dict[int, str] = {}
    for worker in workers:
        run_id = client.create_run(experiment_id).info.run_id  # before the pause, on any worker
        others = [p for p in workers if p != worker]
        _signal(others, signal.SIGSTOP)
        try:
            _finish(uri, run_id)
            event = recorder.wait_for_run(run_id, timeout=20)
        finally:
            _signal(others, signal.SIGCONT)
        headers = event["headers"]
        assert event["payload"]["data"]["experiment_id"] == experiment_id
        assert signature_valid(SECRET, headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], event["body"],
                               headers["x-mlflow-signature"])
        announced[worker] = run_id
    assert sorted(announced) == workers and _workers(proc.pid) == workers  # none was restarted on the way
    sent = Counter(e["data"]["run_id"] for e in recorder.events())
    assert all(sent[run_id] == 1 for run_id in announced.values()), sent


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    receiver = Recorder()
    yield receiver
    receiver.server.shutdown()


def _server(tmp_path: Path, recorder: Recorder, workers: int, gunicorn_opts: str | None = None):  # noqa: ANN202
    """``gunicorn_opts``: ``--gunicorn-opts``, given as MLflow's own ``MLFLOW_GUNICORN_OPTS`` (the same option)."""
    return start_mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, timeout_s=180,
                               app_name="registry-watcher", workers=workers,
                               env={**ENV, "REGISTRY_WATCHER_RUN_EVENTS_URL": recorder.url,
                                    "REGISTRY_WATCHER_RUN_EVENTS_SECRET": SECRET,
                                    **({"MLFLOW_GUNICORN_OPTS": gunicorn_opts} if gunicorn_opts else {})})


def test_every_uvicorn_worker_of_four_announces_the_runs_it_ends(tmp_path: Path, recorder: Recorder) -> None:
    proc, uri = _server(tmp_path, recorder, 4)
    try:
        log = tmp_path / "server.log"
        _wait(lambda: log.read_text().count("Application startup complete") >= 4, 120, "4 workers started")
        _each_worker_announces(proc, uri, recorder, 4)
    finally:
        stop(proc)


def test_gunicorn_opts_preload_every_worker_announces_and_mlflows_workers_flag_wins(
        tmp_path: Path, recorder: Recorder) -> None:
    """``--gunicorn-opts`` selects gunicorn (MLflow's Flask app; the factory runs once in the arbiter
    with ``--preload``, and each forked worker starts its own delivery thread). MLflow appends its
    own ``-w <--workers>`` after the options, so a ``--workers`` inside ``--gunicorn-opts`` is
    overridden: 3 workers here, not 2."""
    proc, uri = _server(tmp_path, recorder, 3, "--workers 2 --timeout 60 --preload")
    try:
        assert b"gunicorn" in b"".join(_cmdline(p) for p in _children(proc.pid))
        _each_worker_announces(proc, uri, recorder, 3)
    finally:
        stop(proc)
