"""The Flask hook: after a successful ``runs/update`` that finished a run, queue its event.

MLflow serves ``POST /api/2.0/mlflow/runs/update`` and ``/ajax-api/2.0/mlflow/runs/update`` with
the Flask view ``_update_run`` (behind FastAPI's WSGI mount under uvicorn, directly under gunicorn
or waitress). Every client path that ends a run goes there: ``mlflow.end_run``,
``MlflowClient.set_terminated`` and ``MlflowClient.update_run``. The hook matches the endpoint
name, not the path, so ``--static-prefix`` is covered too, and reads the run's experiment from the
response (``run_info``): no extra request to the store. Renaming a finished run re-sends
``FINISHED``, so a run may be announced twice; the receiver treats events as hints (idempotent).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from registry_watcher_run_events import delivery

UPDATE_RUN_ENDPOINT = "_update_run"
log = logging.getLogger("registry_watcher_run_events")


def _body(request: Any) -> dict[str, Any] | None:
    body = request.get_json(force=True, silent=True)
    if isinstance(body, str):  # some clients double-encode the body; MLflow's handler accepts it too
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body if isinstance(body, dict) else None


def after_request(response: Any) -> Any:
    """Flask ``after_request``: never changes or fails the response."""
    try:
        from flask import request

        if request.endpoint != UPDATE_RUN_ENDPOINT or response.status_code != 200:
            return response
        body = _body(request)
        if body is None or body.get("status") != "FINISHED":
            return response
        run_info = (json.loads(response.get_data()) or {}).get("run_info") or {}
        if run_info.get("status") == "FINISHED":
            delivery.submit(run_info)
    except Exception:
        log.exception("registry-watcher run event hook failed")
    return response


def attach(flask_app: Any) -> bool:
    """Register the hook on MLflow's Flask app, once; False (and an error) when the route moved."""
    if UPDATE_RUN_ENDPOINT not in flask_app.view_functions:
        log.error("registry-watcher run events: MLflow no longer serves %s through Flask; no run event will be "
                  "sent (the watcher's poll still registers every run)", UPDATE_RUN_ENDPOINT)
        return False
    if after_request not in flask_app.after_request_funcs.get(None, []):
        flask_app.after_request(after_request)
    return True
