"""``RunEventRouter`` resolves an event's experiment id through the one experiment cache
(``watcher.store.experiments.IDS``): one request per id and server, none after; a failed lookup is
nobody's event and is asked again next time. No server: the client is a fake.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from watcher.config import WatchConfig
from watcher.service.run_events import RunEventRouter


class _Client:
    def __init__(self, names: dict[str, str]) -> None:
        self.tracking_uri = f"http://router-{uuid.uuid4().hex}"
        self.names, self.asked = names, []

    def get_experiment(self, experiment_id: str) -> Any:
        self.asked.append(experiment_id)
        if experiment_id not in self.names:
            raise RuntimeError(f"no experiment {experiment_id}")
        return SimpleNamespace(name=self.names[experiment_id])


def test_an_id_is_resolved_once_through_the_experiment_cache() -> None:
    client = _Client({"1": "churn", "2": "other"})
    watches = [WatchConfig(experiment="churn", model_name="m", gates=[{"metric": "recall", "min": 0.0}])]
    router = RunEventRouter(lambda: client, lambda: watches)  # type: ignore[arg-type,return-value]
    assert router.experiments_for("1") == ["churn"] and router.experiments_for("1") == ["churn"]
    assert router.experiments_for("2") == [] and router.experiments_for("9") == [] and router.experiments_for("9") == []
    assert client.asked == ["1", "2", "9", "9"]
