"""The HTTP side of ``registry-watcher run``: liveness, readiness, Prometheus metrics, MLflow webhooks.

A Starlette app built from a :class:`Health` (fed by the daemon's ``Poller``) and an optional
webhook :class:`~watcher.webhooks.Receiver`, served by uvicorn in a daemon thread. uvicorn does not
install signal handlers (the daemon owns SIGTERM) and logs through our structlog pipeline.

* ``GET /healthz``: 200 while the poll loop is alive (it ran within ``liveness_seconds``, or a
  poll is in progress), else 503.
* ``GET /readyz``: 200 once every watch has completed a poll against a reachable tracking server,
  503 before that and from the first failed poll until the next good one.
* ``GET /metrics``: ``prometheus_client``'s default registry in the text format.
* ``POST /webhooks/mlflow``: served when ``http.webhook_secret`` is set.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.config import HttpConfig, WatcherConfig
from watcher.logs import get_logger
from watcher.report import TickReport
from watcher.webhooks import Receiver

log = get_logger("watcher.http")


@dataclass
class Health:
    """Loop heartbeat and the last poll outcome per watch; written by the poller, read by HTTP."""

    models: list[str]
    liveness_seconds: float
    heartbeat: float = field(default_factory=time.monotonic)
    polling_since: float | None = None
    outcomes: dict[str, bool] = field(default_factory=dict)
    """model name -> whether its last completed poll reached the server."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_config(cls, config: WatcherConfig) -> Health:
        limit = (config.http.liveness_seconds if config.http else None) or max(3 * config.poll_interval_seconds, 30.0)
        return cls([w.model_name for w in config.watches], limit)

    def beat(self) -> None:
        """The loop ran (also when it skipped a poll for backoff)."""
        with self._lock:
            self.heartbeat = time.monotonic()

    def poll_started(self) -> None:
        with self._lock:
            self.heartbeat = self.polling_since = time.monotonic()

    def poll_finished(self, report: TickReport | None, failed: bool) -> None:
        """Record a finished poll; ``report`` None with ``failed`` means the tick itself raised."""
        with self._lock:
            self.heartbeat = time.monotonic()
            self.polling_since = None
            if report is None:
                if failed:
                    self.outcomes = {model: False for model in self.models}
                return
            for wr in report.watches:
                self.outcomes[wr.model_name] = not wr.poll_failed

    def alive(self) -> tuple[bool, dict]:
        with self._lock:
            age = time.monotonic() - self.heartbeat
            polling = self.polling_since is not None
        return polling or age < self.liveness_seconds, {"loop_age_seconds": round(age, 3), "polling": polling}

    def ready(self) -> tuple[bool, dict]:
        with self._lock:
            outcomes = dict(self.outcomes)
        watches = {model: ("ok" if outcomes.get(model) else "failed" if model in outcomes else "pending")
                   for model in self.models}
        return all(state == "ok" for state in watches.values()), {"watches": watches}


def build_app(health: Health, http: HttpConfig, receiver: Receiver | None = None) -> Starlette:
    """The Starlette app; ``receiver`` None leaves the webhook route out (404)."""

    async def healthz(_: Request) -> Response:
        ok, detail = health.alive()
        return JSONResponse({"status": "ok" if ok else "stalled", **detail}, status_code=200 if ok else 503)

    async def readyz(_: Request) -> Response:
        ok, detail = health.ready()
        return JSONResponse({"status": "ready" if ok else "not_ready", **detail}, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def webhook(request: Request) -> Response:
        assert receiver is not None
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > http.max_body_bytes):
            return JSONResponse({"detail": "body too large"}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > http.max_body_bytes:
                return JSONResponse({"detail": "body too large"}, status_code=413)
        outcome = receiver.handle({k.lower(): v for k, v in request.headers.items()}, body)
        return JSONResponse({"detail": outcome.detail, "tick_requested": outcome.tick_requested},
                            status_code=outcome.status)

    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    if receiver is not None:
        routes.append(Route("/webhooks/mlflow", webhook, methods=["POST"]))
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn in a daemon thread; :meth:`start` waits until it listens, :meth:`stop` ends it."""

    def __init__(self, app: Starlette, http: HttpConfig) -> None:
        self.http = http
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=http.host, port=http.port, log_config=None, access_log=False, lifespan="off",
            server_header=False))
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn exits on a startup failure (port in use); start() reports it
            pass

    def start(self, timeout_s: float = 15.0) -> None:
        """Start serving; raise RuntimeError when it could not bind in ``timeout_s``."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server could not listen on {self.http.host}:{self.http.port}")
            time.sleep(0.05)

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one picked for ``port: 0``)."""
        for server in self._server.servers or []:
            for sock in server.sockets:
                return sock.getsockname()[1]
        return self.http.port

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)
