"""Small helpers shared by the integration tests."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from demo.churn import train_run


class SimulatedCrash(BaseException):
    """Raised at a named crash point; a BaseException so the engine does not swallow it."""


def crash_at(point: str):
    """A crash hook that raises :class:`SimulatedCrash` at ``point``."""

    def hook(name: str) -> None:
        if name == point:
            raise SimulatedCrash(name)

    return hook


def train(experiment: str, variant: str = "good", **kwargs: object) -> str:
    """One training run with the seed's pattern-1 code (small frame, few trees)."""
    options = {"rows": 600, "n_estimators": 8, **kwargs}
    return train_run(experiment, variant, **options)  # type: ignore[arg-type]


def versions_of(client: MlflowClient, model: str, run_id: str | None = None) -> list:
    query = f"name='{model}'" + (f" and run_id='{run_id}'" if run_id else "")
    return client.search_model_versions(query)


def decision(client: MlflowClient, run_id: str) -> dict[str, str]:
    tags = client.get_run(run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith("watcher.")}


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e.get("event") == name]


def end_active_run(status: str = "FINISHED") -> None:
    mlflow.end_run(status=status)


def staging(client: MlflowClient, model: str, alias: str = "staging") -> str | None:
    aliases = client.get_registered_model(model).aliases or {}
    value = aliases.get(alias)
    return None if value is None else str(value)


def captured():
    """``structlog.testing.capture_logs`` with the contextvars merged, as the real pipeline does."""
    from structlog.contextvars import merge_contextvars
    from structlog.testing import capture_logs

    return capture_logs(processors=[merge_contextvars])
