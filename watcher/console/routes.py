"""The console's routes, served by the daemon's HTTP server (``http.console``, on by default).

* ``GET /``: the fleet; ``GET /console/fleet.json?since=V``: its fresh rows (the page's refresh);
* ``GET /models/<name>`` (URL-encoded name); ``GET /console/model.json?name=N&since=V``;
* ``GET /runs/<id>``: what ``explain --run`` says;
* ``GET /console/static/...`` (stylesheet, script), ``GET /favicon.ico``.

Read-only: every route is a GET. HTML answers carry a Content-Security-Policy that allows only
this origin (no CDN, no inline script), so an escaped value could not run even if one slipped.
:class:`Console` is built once per process by ``watcher.service.process``, which hands it every
tick's report (:meth:`Console.after_tick`) and adds :meth:`Console.routes` to the HTTP app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources

from mlflow import MlflowClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from watcher.config import WatchConfig, WatcherConfig
from watcher.console.detail import DetailCache, ModelDetail
from watcher.console.links import UiLinks
from watcher.console.pages import FLEET_JSON, MODEL_JSON, PACKAGE, STATIC, Pages
from watcher.console.state import FleetState
from watcher.console.view import ModelRow, Providers
from watcher.engine import TickReport
from watcher.obs.logs import get_logger
from watcher.obs.redact import redact

log = get_logger("watcher.console")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FAVICON = resources.files(PACKAGE).joinpath("static/favicon.ico").read_bytes()
Approvers = Callable[[str], Mapping[str, list[str]]]
"""Model name -> audit entry id -> who approved that move (given where approvals exist)."""


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _json_answer(data: object) -> JSONResponse:
    return JSONResponse(data, headers=HEADERS)


class Console:
    """The console of one process: its fleet state (fed by the poller) and its pages."""

    def __init__(self, client: Callable[[], MlflowClient], config: Callable[[], WatcherConfig],
                 watches: Callable[[], Sequence[WatchConfig]], providers: Providers | None = None,
                 approvers: Approvers | None = None) -> None:
        self._config = config
        self._watches = watches
        self._approvers = approvers
        self.state = FleetState(providers)
        self.details = DetailCache(client, config)
        self.pages = Pages()

    def after_tick(self, watches: Sequence[WatchConfig], report: TickReport | None, error: str = "") -> None:
        """The poller's hook, at the end of every tick: the next page view shows what it did."""
        try:
            view = self.state.take_tick(watches, report, redact(error))
            self.pages.fleet_page(view)  # rendered here, on the poll thread: a view of / is a lookup
        except Exception as exc:  # noqa: BLE001 - the console must never stop the poll loop
            log.error("console_update_failed", error=f"{type(exc).__name__}: {exc}")

    def _watch_of(self, name: str) -> WatchConfig | None:
        return next((w for w in self._watches() if w.model_name == name), None)

    def _row_of(self, name: str, watch: WatchConfig) -> ModelRow:
        return self.state.current_view().row(name) or ModelRow(name, watch.experiment, staging_alias=watch.staging_alias,
                                                       production_alias=watch.production_alias)

    async def _detail(self, watch: WatchConfig) -> tuple[ModelDetail | None, str]:
        try:
            detail = await run_in_threadpool(self.details.model_detail, watch)
        except Exception as exc:  # noqa: BLE001 - the page still shows what the daemon knows
            log.warning("console_read_failed", page="model", error=redact(f"{type(exc).__name__}: {exc}"))
            return None, type(exc).__name__
        last = detail.last_decision()
        if last is not None:
            self.state.note_decision(watch.model_name, last)
        return detail, ""

    def _approvals_of(self, name: str) -> dict[str, list[str]] | None:
        return None if self._approvers is None else dict(self._approvers(name))

    async def fleet_route(self, _: Request) -> Response:
        return _html(self.pages.fleet_page(self.state.current_view()))

    async def fleet_json_route(self, request: Request) -> Response:
        return _json_answer(self.pages.fleet_payload(self.state.current_view(), request.query_params.get("since")))

    async def model_route(self, request: Request) -> Response:
        name = request.path_params["name"]
        watch = self._watch_of(name)
        if watch is None:
            return _html(self.pages.missing(f"No watched model is named '{name}'."), 404)
        detail, problem = await self._detail(watch)
        links = UiLinks.from_config(self._config())
        return _html(self.pages.model_page(self._row_of(name, watch), detail, links,
                                           updated_at=self.state.current_view().updated_at, problem=problem,
                                           approvers=self._approvals_of(name)))

    async def model_json_route(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        watch = self._watch_of(name)
        if watch is None:
            return JSONResponse({"detail": "no such watched model"}, status_code=404, headers=HEADERS)
        detail, problem = await self._detail(watch)
        return _json_answer(self.pages.model_payload(self._row_of(name, watch), detail, UiLinks.from_config(self._config()),
                                           request.query_params.get("since"), problem, self._approvals_of(name)))

    async def run_route(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if not RUN_ID.match(run_id):
            return _html(self.pages.missing("That is not a run id."), 404)
        try:
            found = await run_in_threadpool(self.details.run_explained, run_id)
        except Exception as exc:  # noqa: BLE001 - MLflow unreachable: say so, show nothing stale
            log.warning("console_read_failed", page="run", error=redact(f"{type(exc).__name__}: {exc}"))
            return _html(self.pages.missing(f"MLflow could not be read ({type(exc).__name__}); try again."), 503)
        if found is None:
            return _html(self.pages.missing(f"No run '{run_id}' on the tracking server."), 404)
        watch = found.get("watch") or {}
        row = self.state.current_view().row(watch.get("model_name", ""))
        experiment_id = row.experiment_id if row is not None and row.experiment == found.get("experiment") else None
        return _html(self.pages.run_page(found, UiLinks.from_config(self._config()), experiment_id,
                                    self.state.current_view().updated_at))

    @staticmethod
    async def favicon(_: Request) -> Response:
        return Response(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})

    def routes(self) -> list[BaseRoute]:
        """The console's routes, for ``watcher.service.http.build_app(extra_routes=...)``."""
        static = StaticFiles(packages=[(PACKAGE, "static")])
        return [Route("/", self.fleet_route, methods=["GET"]), Route(FLEET_JSON, self.fleet_json_route, methods=["GET"]),
                Route(MODEL_JSON, self.model_json_route, methods=["GET"]),
                Route("/models/{name:path}", self.model_route, methods=["GET"]),
                Route("/runs/{run_id}", self.run_route, methods=["GET"]),
                Route("/favicon.ico", self.favicon, methods=["GET"]), Mount(STATIC, app=static, name="console-static")]
