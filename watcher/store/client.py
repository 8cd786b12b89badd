"""The MLflow client the watcher uses: MLflow's own ``MlflowClient``, pointed at the configured server.

Nothing of it is overridden. ``MlflowClient`` checks before every registered-model tag, version tag
or alias write that the model is not a *prompt* (a ``GET registered-models/get`` each time); MLflow
offers no public way to skip that check, so the watcher keeps it: a prompt named as a watch's model
is refused by MLflow itself (it reports the prompt as a model that does not exist), on every path.
"""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from watcher.config import WatcherConfig


def make_client(config: WatcherConfig, *, process_wide: bool = True) -> MlflowClient:
    """Point MLflow at the configured server (also for ``models:/`` loads) and return a client.

    The registry is ``registry_uri``, else the tracking server, as documented: never an inherited
    ``$MLFLOW_REGISTRY_URI`` (``mlflow.set_registry_uri`` exports it to child processes).
    ``process_wide=False`` only builds the client: the CLI verbs that use nothing but the client
    (``status``, ``history``, ``promote``) skip ``mlflow.set_tracking_uri``, which resets MLflow's
    tracing provider (~0.2 s of start-up).
    """
    if not config.tracking_uri:  # never MLflow's own default (a local store in the working folder)
        raise ValueError("tracking_uri is not set: give it in the file, $WATCHER_TRACKING_URI or $MLFLOW_TRACKING_URI")
    registry = config.registry_uri or config.tracking_uri
    if process_wide:
        mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_registry_uri(registry)
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=registry)
