"""The ``mlflow.app`` factories: ``registry-watcher`` and ``registry-watcher-basic-auth``.

``mlflow server --app-name NAME`` resolves NAME in the ``mlflow.app`` entry-point group and, as a
plain function, calls it as a factory in every server worker (uvicorn, the default) or once before
forking (gunicorn ``--preload``). Under uvicorn the factory must return the ASGI app, so it returns
MLflow's own FastAPI app (the very object the server runs without ``--app-name``); under gunicorn
or waitress, MLflow's Flask app. Either way the server behaves exactly as without the plugin, plus
the hook (:mod:`registry_watcher_run_events.hook`).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from typing import Any

from registry_watcher_run_events import hook

SGI_ENV = "_MLFLOW_SGI_NAME"
BOOTSTRAPPED_ENV = "_MLFLOW_AUTH_ADMIN_BOOTSTRAPPED"


def _serve(flask_app: Any) -> Any:
    if os.environ.get(SGI_ENV) == "uvicorn":
        from mlflow.server.fastapi_app import app as fastapi_app

        return fastapi_app
    return flask_app


def create_app() -> Any:
    """``--app-name registry-watcher``: MLflow's server plus run events."""
    from mlflow.server import app as flask_app

    hook.attach(flask_app)
    return _serve(flask_app)


def create_basic_auth_app() -> Any:
    """``--app-name registry-watcher-basic-auth``: MLflow's ``basic-auth`` app plus run events.

    ``mlflow server`` validates the auth config and creates the admin user before starting workers
    only for the literal app name ``basic-auth``; here every worker would. So the first worker
    does it under a file lock and the others find the admin already there (a cheap check each);
    MLflow's ``create_app`` then only opens the auth store. A bad auth config (no
    ``MLFLOW_FLASK_SERVER_SECRET_KEY``, no admin password) fails each worker with MLflow's own
    message, and uvicorn restarts them: check the server log, or start once with ``basic-auth``.
    """
    from mlflow.server import app as flask_app
    from mlflow.server.auth import bootstrap_admin_user, get_flask_server_secret_key
    from mlflow.server.auth import create_app as auth_create_app

    if os.environ.get(BOOTSTRAPPED_ENV, "").lower() != "true":
        lock_path = os.path.join(tempfile.gettempdir(), "registry-watcher-basic-auth.lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                get_flask_server_secret_key()
                bootstrap_admin_user()
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        os.environ[BOOTSTRAPPED_ENV] = "true"  # this worker's create_app: open the store, no second bootstrap
    served = auth_create_app(flask_app)  # FastAPI under uvicorn, Flask otherwise (MLflow decides)
    hook.attach(flask_app)
    return served
