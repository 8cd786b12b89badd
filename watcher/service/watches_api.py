"""``GET /api/v1/watches``: every watch of this process and its state, for ``status`` and the console.

The answer (200, JSON)::

    {"watches": [
      {"watch": "team-a -> team_a_model",   # "<experiment> -> <model>": the key of events and metrics
       "model": "team_a_model",
       "experiment": "team-a",
       "experiment_id": "12",                # null until found (or when it cannot be read by name)
       "state": "ok",                        # "ok" | "failed" | "refused"
       "reason": null,                       # why it is failed or refused (null when ok)
       "since": "2026-12-03T10:04:05Z",      # UTC, when it entered this state
       "held_by": "replica-ab12",            # ha: the replica holding the model's lock, if known; else null
       "held_here": true}                    # ha: whether this replica holds it; null without ha
    ]}

Configured and discovered watches come first, in the effective set's order, then the refused ones
(an experiment tagged with a model another experiment owns). A failed watch is retried on its own
backoff; ``registry_watcher_watch_up{watch=...}`` says the same as ``state`` for Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watcher.service.watch_states import WatchState

PATH = "/api/v1/watches"


def watch_routes(views: Callable[[], Sequence[WatchState]]) -> list[BaseRoute]:
    """The route, reading ``views()`` (the poller in force: ``Poller.watch_states``) per request."""

    async def watches(_: Request) -> Response:
        found = await run_in_threadpool(views)
        return JSONResponse({"watches": [state.to_json() for state in found]})

    return [Route(PATH, watches, methods=["GET"])]
