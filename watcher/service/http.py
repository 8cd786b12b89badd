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
from collections.abc import Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watcher.config import HttpConfig
from watcher.obs.logs import get_logger
from watcher.service.health import Health
from watcher.service.webhooks import Receiver

log = get_logger("watcher.http")


def build_app(health: Health, http: HttpConfig, receiver: Receiver | None = None,
              extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The Starlette app; ``receiver`` None leaves the webhook route out (404). ``extra_routes``: each
    capability's own (the approvals API, the events API, the console), composed by ``watcher.service.process``."""

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
        # off the event loop: a run event for an experiment not seen yet is looked up in MLflow
        outcome = await run_in_threadpool(receiver.handle, {k.lower(): v for k, v in request.headers.items()}, body)
        return JSONResponse({"detail": outcome.detail, "tick_requested": outcome.tick_requested},
                            status_code=outcome.status)

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    if receiver is not None:
        routes.append(Route("/webhooks/mlflow", webhook, methods=["POST"]))
    routes.extend(extra_routes)
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn in a daemon thread; :meth:`start` waits until it listens, :meth:`stop` ends it."""

    def __init__(self, app: Starlette, http: HttpConfig) -> None:
        self.http = http
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=http.host, port=http.port, log_config=None, access_log=False, lifespan="off",
            server_header=False, ssl_certfile=http.tls_certfile, ssl_keyfile=http.tls_keyfile))
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
                return int(sock.getsockname()[1])
        return self.http.port

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)
