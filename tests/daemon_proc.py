"""The daemon (``registry-watcher run``) as a subprocess whose JSON log lines are collected in a thread,
plus small HTTP helpers for its endpoints. Waits are bounded and event-driven, never fixed sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).parent


class Daemon:
    """``python -m watcher run --config FILE``; ``events`` grows as the process logs."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "watcher", "run", "--config", str(config_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env)
        self.events: list[dict] = []
        self.raw: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            with self._changed:
                self.raw.append(line)
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.events.append({"event": "not_json", "text": line})
                self._changed.notify_all()

    def wait_for(self, name: str, timeout: float, where: Callable[[dict], bool] = lambda e: True,
                 start: int = 0) -> dict:
        """The first event ``name`` (from index ``start``) matching ``where``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[start:]:
                    if event.get("event") == name and where(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "".join(self.raw[-30:])
                    raise AssertionError(f"no '{name}' event within {timeout}s; last output:\n{tail}")
                self._changed.wait(min(left, 0.5))

    def named(self, name: str) -> list[dict]:
        with self._changed:
            return [e for e in self.events if e.get("event") == name]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(10)
        return self.proc.returncode


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    """(status, body) of a GET; (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_status(url: str, wanted: int, timeout: float, interval: float = 0.25) -> float:
    """Poll ``url`` until it answers ``wanted``; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    last: tuple[int, str] = (0, "")
    while time.monotonic() - started < timeout:
        last = get(url)
        if last[0] == wanted:
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"{url} did not answer {wanted} within {timeout}s; last: {last}")


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


class Answer:
    """A small response object: ``status_code``, ``text``, ``headers``, ``json()``."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code, self.content, self.headers = status, body, {k.lower(): v for k, v in headers.items()}
        self.text = body.decode()

    def json(self) -> dict:
        return json.loads(self.content)


class LiveClient:
    """The app served for real by ``watcher.http.HttpServer`` on a free loopback port (no httpx here)."""

    def __init__(self, app) -> None:  # noqa: ANN001 - a Starlette app
        from watcher.config import HttpConfig
        from watcher.service.http import HttpServer

        self.server = HttpServer(app, HttpConfig(host="127.0.0.1", port=0))
        self.server.start()
        self.base = f"http://127.0.0.1:{self.server.port}"

    def request(self, method: str, path: str, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        req = urllib.request.Request(self.base + path, data=content, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Answer(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), dict(exc.headers))

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, content: bytes, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, content, {"Content-Type": "application/json", **(headers or {})})

    def close(self) -> None:
        self.server.stop()
