"""The MLflow client the watcher uses: MLflow's own, pointed at the configured server, minus one
redundant request per registry write.

``MlflowClient`` checks before every registered-model tag, version tag or alias write that the
model is not a *prompt*, with an extra ``GET registered-models/get`` each time: a third of the
requests of one registration. The watcher writes only to the models named in its config and
checks each of them once per tick instead (``registry.ensure_registered_model`` refuses a prompt).
"""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from watcher.config import WatcherConfig


class WatcherClient(MlflowClient):
    """``MlflowClient`` without the per-write prompt check (done once per tick by the engine)."""

    def _raise_if_prompt(self, name: str) -> None:  # noqa: ARG002 - checked once per tick instead
        return None


def make_client(config: WatcherConfig, *, process_wide: bool = True) -> MlflowClient:
    """Point MLflow at the configured server (also for ``models:/`` loads) and return a client.

    The registry is ``registry_uri``, else the tracking server, as documented: never an inherited
    ``$MLFLOW_REGISTRY_URI`` (``mlflow.set_registry_uri`` exports it to child processes).
    ``process_wide=False`` only builds the client: the CLI verbs that use nothing but the client
    (``status``, ``history``, ``promote``) skip ``mlflow.set_tracking_uri``, which resets MLflow's
    tracing provider (~0.2 s of start-up).
    """
    registry = config.registry_uri or config.tracking_uri
    if process_wide:
        mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_registry_uri(registry)
    return WatcherClient(tracking_uri=config.tracking_uri, registry_uri=registry)
