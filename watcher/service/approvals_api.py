"""The approvals HTTP API (issue 27), served by ``run`` beside the probes when a watch has ``approval``.

* ``GET /api/v1/approvals[?model=M&state=S]``: every request (no identity needed);
* ``POST /api/v1/approvals`` ``{model, version, reason, force}``: a request (201);
* ``POST /api/v1/approvals/{id}/approve|reject|withdraw`` ``{comment}``;
* ``POST /api/v1/approvals/rollback`` ``{model, to, reason}``: a named approver's break-glass rollback
  (moves at once, 200), anyone else's a request for that version (201).

Acting needs the caller's own credentials (``watcher.approvals.identity``). Errors are JSON
``{"detail": ...}`` with 400 (a bad body), 401 (unverified), 403 (not allowed), 404 (unknown),
409 (wrong state, a second vote); an unexpected failure (the tracking server down) is 503.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlflow import MlflowClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watcher.approvals.board import Board
from watcher.approvals.identity import Caller, Unverified, verify_caller
from watcher.approvals.service import ApprovalError, ApprovalService
from watcher.approvals.signing import Signer
from watcher.approvals.state import STATES
from watcher.approvals.wiring import enabled
from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import approved, promotion
from watcher.obs import metrics_approvals
from watcher.obs.logs import get_logger

log = get_logger("watcher.approvals")
ACTIONS = ("approve", "reject", "withdraw")


class BadRequest(Exception):
    """A body that is not what the route takes (400)."""


def _field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"'{name}' must be a non-empty string")
    return value.strip()


class ApprovalsApi:
    """The routes, over the daemon's approvals service and its config in force."""

    def __init__(self, service: ApprovalService, config: Callable[[], WatcherConfig]) -> None:
        self.service = service
        self.config = config

    def approval_routes(self) -> list[BaseRoute]:
        return [Route("/api/v1/approvals", self._collection, methods=["GET", "POST"]),
                Route("/api/v1/approvals/rollback", self._rollback, methods=["POST"]),
                Route("/api/v1/approvals/{request_id}/{action}", self._act, methods=["POST"])]

    async def _respond(self, request: Request, work: Callable[[dict[str, Any], Caller | None], tuple[int, Any]],
                    *, identity: bool = True) -> Response:
        try:
            body = await _json_body(request) if request.method == "POST" else {}
            headers = {k.lower(): v for k, v in request.headers.items()}
            status, payload = await run_in_threadpool(self._run, work, body, headers, identity)
        except BadRequest as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(payload, status_code=status)

    def _run(self, work: Callable[[dict[str, Any], Caller | None], tuple[int, Any]], body: dict[str, Any],
             headers: dict[str, str], identity: bool) -> tuple[int, Any]:
        config = self.config()
        try:
            caller = verify_caller(headers, config.tracking_uri or "", config.identity.oidc) if identity else None
            return work(body, caller)
        except Unverified as exc:
            self.service.refuse(401, str(exc), action="verify")
            return 401, {"detail": f"unverified: {exc}"}
        except ApprovalError as exc:
            return exc.status, {"detail": exc.detail}
        except promotion.PromotionError as exc:
            return 409, {"detail": str(exc)}
        except BadRequest:
            raise
        except Exception as exc:  # noqa: BLE001 - the tracking server down, say: not the caller's fault
            log.error("command_failed", verb="approvals_api", error=f"{type(exc).__name__}: {exc}")
            return 503, {"detail": f"the daemon could not do it now: {type(exc).__name__}"}

    async def _collection(self, request: Request) -> Response:
        if request.method == "GET":
            model = request.query_params.get("model") or None
            state = request.query_params.get("state") or None
            if state is not None and state not in STATES:
                return JSONResponse({"detail": f"state must be one of {', '.join(STATES)}"}, status_code=400)
            return await self._respond(request, lambda _b, _c: (200, [v.as_json() for v in
                                                                    self.service.requests_of(model, state)]),
                                    identity=False)

        def make(body: dict[str, Any], caller: Caller | None) -> tuple[int, Any]:
            assert caller is not None
            view = self.service.request(caller, _field(body, "model"), _field(body, "version"),
                                        _field(body, "reason", required=False), force=body.get("force") is True)
            return 201, view.as_json()

        return await self._respond(request, make)

    async def _act(self, request: Request) -> Response:
        request_id, action = request.path_params["request_id"], request.path_params["action"]
        if action not in ACTIONS:
            return JSONResponse({"detail": f"unknown action '{action}'"}, status_code=404)

        def act(body: dict[str, Any], caller: Caller | None) -> tuple[int, Any]:
            assert caller is not None
            return 200, self.service.act(caller, request_id, action, _field(body, "comment", required=False)).as_json()

        return await self._respond(request, act)

    async def _rollback(self, request: Request) -> Response:
        def rollback(body: dict[str, Any], caller: Caller | None) -> tuple[int, Any]:
            assert caller is not None
            model, to, reason = _field(body, "model"), _field(body, "to", required=False), _field(body, "reason",
                                                                                                  required=False)
            board = self.service.board
            watch = board.watch(model)
            if watch is None or watch.approval is None:
                raise ApprovalError(404, f"no watch with an approval block for model '{model}'")
            experiment = self.config().audit_experiment
            if caller.username in watch.approval.approvers:
                entry = approved.break_glass(board.client, self.service, watch, caller, to or None, reason, experiment)
                return 200, {"break_glass": True, "entry": entry.public()}
            if not to:
                history = promotion.production_history(board.client, watch, experiment)
                current = history[-1].version if history else None
                to = next((e.version for e in reversed(history) if e.version and e.version != current), "") or ""
            if not to:
                raise ApprovalError(409, f"{model} has no previous production version to roll back to")
            view = self.service.request(caller, model, to, reason, action="rollback")
            return 201, {"break_glass": False, **view.as_json()}

        return await self._respond(request, rollback)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 1_048_576:
        raise BadRequest("body too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def approvals_api(config: WatcherConfig, client: MlflowClient, watches: Callable[[], Sequence[WatchConfig]],
                  current: Callable[[], WatcherConfig], kick: Callable[[], None]) -> ApprovalsApi | None:
    """The API over a board of the effective watch set (None without approvals)."""
    if not enabled(config):
        return None
    metrics_approvals.init_approvals([w.model_name for w in config.watches if w.approval is not None])
    board = Board(client, watches, Signer.from_env(), time.time)
    return ApprovalsApi(ApprovalService(board, kick), current)
