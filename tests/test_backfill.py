"""Item 4 of issue 26: backfill on onboarding (``discover.backfill``).

Tagging an experiment with a history no longer gates and registers all of it at once: by default
(``since_tagged``) a new watch starts where the watcher first saw the tag (recorded on the
experiment, so a restart agrees); ``backfill: all`` takes the older runs on purpose, at most
``backfill_batch`` per tick, while the other watches of the same tick are decided as usual.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import captured, events
from mlflow import MlflowClient

from watcher.config import DiscoverConfig, load_config
from watcher.engine import Session, TickOptions, reconcile_once
from watcher.service.poller import Poller
from watcher.store import keys

TAG = "registry-watcher.model"


def _config(tmp_path: Path, tracking_uri: str, backfill: str = "") -> object:
    path = tmp_path / "watcher.yaml"
    path.write_text(f"""tracking_uri: {tracking_uri}
poll_interval_seconds: 1
discover:
  interval_seconds: 3600
{backfill}profiles:
  default:
    gates: [{{metric: recall, min: 0.2}}]
""")
    return load_config(path)


def _runs(client: MlflowClient, experiment_id: str, count: int) -> list[str]:
    """Finished runs with no model (each is decided ``rejected`` once it is a candidate), oldest first."""
    made = []
    for _ in range(count):
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "recall", 0.5)
        client.set_terminated(run.info.run_id)
        made.append(run.info.run_id)
    return made


def _decided(client: MlflowClient, run_ids: list[str]) -> list[bool]:
    return [keys.DECISION in client.get_run(r).data.tags for r in run_ids]


def test_backfill_from_ms() -> None:
    seen = 1_800_000_000_000
    assert DiscoverConfig().backfill_from_ms(seen) == seen
    assert DiscoverConfig(backfill="all").backfill_from_ms(seen) == 0
    date = DiscoverConfig.model_validate({"backfill": "2026-01-01"})
    assert date.backfill_from_ms(seen) == int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert DiscoverConfig.model_validate({"backfill": "2030-01-01T00:00:00Z"}).backfill_from_ms(seen) == seen


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_since_tagged_skips_the_history(tmp_path: Path, tracking_uri: str, client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, name = f"bf_since_{suffix}", f"bf_since_exp_{suffix}"
    exp_id = client.create_experiment(name)
    old = _runs(client, exp_id, 3)
    client.set_experiment_tag(exp_id, TAG, model)  # an experiment with a history is tagged
    config = _config(tmp_path, tracking_uri)
    with captured() as logs:
        report = Poller(client, config).poll()
    assert report is not None and report.ok
    assert _decided(client, old) == [False, False, False]
    onboarded = [e for e in events(logs, "watch_onboarded") if e["experiment"] == name]
    assert onboarded and onboarded[0]["backfill"] == "since_tagged"
    assert f"\"model\":\"{model}\"" in client.get_experiment(exp_id).tags[keys.FIRST_SEEN]

    new = _runs(client, exp_id, 1)
    restarted = Poller(client, config)  # a restart (or another replica) reads the same first sighting
    restarted.poll()
    assert _decided(client, new) == [True]
    assert _decided(client, old) == [False, False, False]


@pytest.mark.integration
@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_backfill_all_takes_the_history_in_bounded_batches(tmp_path: Path, tracking_uri: str,
                                                           client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, other = f"bf_all_exp_{suffix}", f"bf_other_exp_{suffix}"
    exp_id = client.create_experiment(name)
    old = _runs(client, exp_id, 5)
    client.set_experiment_tag(exp_id, TAG, f"bf_all_{suffix}")
    other_id = client.create_experiment(other, tags={TAG: f"bf_other_{suffix}"})
    config = _config(tmp_path, tracking_uri, "  backfill: all\n  backfill_batch: 2\n")
    poller = Poller(client, config)
    poller.discover(force=True)
    watches = [w for w in poller.watches() if suffix in w.experiment]
    session = Session()

    def tick() -> dict[str, int]:
        report = reconcile_once(client, config, session=session, options=TickOptions(watches=watches))
        return {w.experiment: len(w.rejected) for w in report.watches}

    fresh = _runs(client, other_id, 1)  # the rest of the fleet: decided in the first tick all the same
    with captured() as logs:
        first = tick()
    assert first == {name: 2, other: 1}
    assert _decided(client, old) == [True, True, False, False, False]  # the oldest first
    assert _decided(client, fresh) == [True]
    assert events(logs, "backfill_progress")
    assert tick()[name] == 2
    with captured() as logs:
        assert tick()[name] == 1
    assert _decided(client, old) == [True] * 5
    assert events(logs, "backfill_completed")
    later = _runs(client, exp_id, 3)  # the backfill is over: no batch limit any more
    assert tick()[name] == 3
    assert _decided(client, later) == [True] * 3
