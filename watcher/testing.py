"""Support for tests and benchmarks: a real ``mlflow server`` subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PORT_BASE = 20000
"""Ports handed out for servers start here: below Linux's ephemeral range (32768-60999), so that no
outgoing connection's local port takes a port between :func:`free_port` and the server's bind."""
PORTS_PER_WORKER = 2000
_next_port: list[int] = []


def _port_range() -> range:
    """This process's ports: one slice per pytest-xdist worker (``gw0``, ``gw1``...), so that two
    workers never hand out the same port; the whole first slice outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    start = PORT_BASE + (index % 6) * PORTS_PER_WORKER
    return range(start, start + PORTS_PER_WORKER)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, never handed out before by this process (until its slice
    wraps): consecutive ports from a start drawn from the process id, each checked by a bind."""
    ports = _port_range()
    if not _next_port:
        _next_port.append(ports.start + os.getpid() % len(ports))
    for _ in range(len(ports)):
        port = _next_port[0]
        _next_port[0] = ports.start + (port + 1 - ports.start) % len(ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def start_mlflow_server(backend_uri: str, workdir: Path, timeout_s: float = 120, *, port: int | None = None,
                        env: dict[str, str] | None = None,
                        artifacts_destination: str | None = None, app_name: str | None = None,
                        workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``mlflow server`` on ``backend_uri`` with artifacts under ``workdir``; wait for /health.

    ``port`` (default: a free one) lets a test restart a server on the same address; ``env`` is
    added to the server's environment (e.g. ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS``);
    ``artifacts_destination`` replaces ``workdir/artifacts`` (e.g. ``s3://bucket/prefix``);
    ``app_name`` is ``--app-name`` (an ``mlflow.app`` plugin, e.g. ``registry-watcher``). The
    server runs in its own process group, so :func:`stop` and :func:`kill` also end its uvicorn
    and job children.
    """
    port = port or free_port()
    log_path = workdir / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
         "--artifacts-destination", artifacts_destination or str(workdir / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), *(["--app-name", app_name] if app_name else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        env={**os.environ, "MLFLOW_CONFIGURE_LOGGING": "true", **(env or {})},
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:  # noqa: S310 - our own http URL
                if resp.status == 200:
                    return proc, uri
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"mlflow server did not start in {timeout_s}s: {log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server started by :func:`start_mlflow_server`, with its children."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=20)
    _signal_group(proc, signal.SIGKILL)  # a child that outlived its parent must not keep the port


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and its children: a crash, at once."""
    _signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=20)
