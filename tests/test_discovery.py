"""Point 1 of issue 19: onboarding by experiment tag (``discover`` and ``profiles``).

A tagged experiment is watched at the next search, with its profile; one whose tag is removed
stops being watched (nothing deleted); an empty tag value and an unknown profile are refused with
a reason while the other watches go on; an explicit ``watches`` entry wins.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import captured, events
from mlflow import MlflowClient

from watcher.config import ConfigError, load_config
from watcher.service.poller import Poller

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)]


def _config(tmp_path: Path, tracking_uri: str, watches: str = "watches: []\n"):
    path = tmp_path / "watcher.yaml"
    path.write_text(f"""tracking_uri: {tracking_uri}
poll_interval_seconds: 1
discover:
  interval_seconds: 30
  backfill: all  # these tests log runs before the first search (the default would start after them)
profiles:
  default:
    gates: [{{metric: recall, min: 0.2}}]
    tags: {{deployment_mode: batch_inference_only}}
  strict:
    gates: [{{metric: recall, min: 0.9}}]
{watches}""")
    return load_config(path)


def _run(client: MlflowClient, experiment_id: str, recall: float) -> str:
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "recall", recall)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_tagged_experiment_is_watched_and_untagged_dropped(tmp_path: Path, tracking_uri: str,
                                                           client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, strict_model = f"disc_model_{suffix}", f"disc_strict_{suffix}"
    tagged = client.create_experiment(f"disc_{suffix}", tags={"registry-watcher.model": model})
    strict = client.create_experiment(f"disc_strict_{suffix}", tags={"registry-watcher.model": strict_model,
                                                                     "registry-watcher.profile": "strict"})
    client.create_experiment(f"disc_empty_{suffix}", tags={"registry-watcher.model": ""})
    client.create_experiment(f"disc_unknown_{suffix}", tags={"registry-watcher.model": f"x_{suffix}",
                                                             "registry-watcher.profile": "nope"})
    run_id = _run(client, tagged, 0.5)
    strict_run = _run(client, strict, 0.5)
    poller = Poller(client, _config(tmp_path, tracking_uri))
    with captured() as logs:
        report = poller.poll()
    assert report is not None
    mine = {w.model_name: w for w in report.watches if suffix in w.model_name}
    assert set(mine) == {model, strict_model}
    assert [r for r, _ in mine[model].rejected] == [run_id]  # no model logged: rejected, but decided
    assert [r for r, _ in mine[strict_model].rejected] == [strict_run]
    found = {e["experiment"]: e for e in events(logs, "watch_discovered") if suffix in e["experiment"]}
    assert found[f"disc_{suffix}"]["model_name"] == model and found[f"disc_{suffix}"]["profile"] == "default"
    assert found[f"disc_strict_{suffix}"]["profile"] == "strict"
    refused = {e["experiment"]: e for e in events(logs, "watch_dropped") if suffix in e["experiment"]}
    assert "empty" in refused[f"disc_empty_{suffix}"]["reason"]
    assert "unknown profile 'nope'" in refused[f"disc_unknown_{suffix}"]["reason"]
    assert all(e["log_level"] == "warning" for e in refused.values())
    assert poller.discovery.source_of(f"disc_strict_{suffix}") == "discovered (experiment tag, profile strict)"

    # the tag is removed: the watch stops at the next search, and nothing is deleted
    client.delete_experiment_tag(tagged, "registry-watcher.model")
    with captured() as logs:
        poller.discover(force=True)  # the next search now, not in discover.interval_seconds
        report = poller.poll()
    assert report is not None
    assert model not in {w.model_name for w in report.watches}
    dropped = [e for e in events(logs, "watch_dropped") if e["experiment"] == f"disc_{suffix}"]
    assert dropped and dropped[0]["log_level"] == "info" and dropped[0]["model_name"] == model
    assert client.get_registered_model(model).name == model
    assert client.get_run(run_id).data.tags["watcher.decision"] == "rejected"
    # a refusal is said once, not at every search
    assert not [e for e in events(logs, "watch_dropped") if e["experiment"] == f"disc_empty_{suffix}"]


def test_explicit_watch_wins(tmp_path: Path, tracking_uri: str, client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    client.create_experiment(f"win_{suffix}", tags={"registry-watcher.model": f"discovered_{suffix}"})
    config = _config(tmp_path, tracking_uri, f"watches:\n  - experiment: win_{suffix}\n    model_name: explicit_{suffix}\n")
    poller = Poller(client, config)
    poller.discover(force=True)
    mine = [w for w in poller.watches() if w.experiment == f"win_{suffix}"]
    assert [w.model_name for w in mine] == [f"explicit_{suffix}"]
    assert poller.discovery.source_of(f"win_{suffix}") == "config"


def test_profiles_are_validated_at_load(tmp_path: Path, tracking_uri: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"tracking_uri: {tracking_uri}\ndiscover: {{}}\nprofiles:\n  default:\n"
                    "    gates: [{metric: recall, min: high}]\n    experiment: nope\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "profiles.default.gates.0.metric.min" in str(err.value)
    assert "profiles.default.experiment" in str(err.value)
    path.write_text(f"tracking_uri: {tracking_uri}\nwatches: []\n")
    with pytest.raises(ConfigError, match="at least one watch"):
        load_config(path)


def test_status_lists_discovered_watches_with_their_source(tmp_path: Path, tracking_uri: str, client: MlflowClient,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from watcher.cli.status import status

    suffix = uuid.uuid4().hex[:8]
    client.create_experiment(f"stat_{suffix}", tags={"registry-watcher.model": f"stat_model_{suffix}",
                                                     "registry-watcher.profile": "strict"})
    client.create_experiment(f"conf_{suffix}")
    config = _config(tmp_path, tracking_uri, f"watches:\n  - experiment: conf_{suffix}\n    model_name: conf_{suffix}\n")
    with captured():  # the discovery's log lines stay off stdout
        assert status(client, config, True, 1) == 0
    rows = {r["experiment"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[f"conf_{suffix}"]["source"] == "config"
    assert rows[f"stat_{suffix}"]["source"] == "discovered (experiment tag, profile strict)"
    assert rows[f"stat_{suffix}"]["model_name"] == f"stat_model_{suffix}"
    # promote, rollback and history find a discovered model's watch too
    from watcher.engine.discovery import find_watch

    with captured():
        found = find_watch(client, config, f"stat_model_{suffix}")
    assert found is not None and found.experiment == f"stat_{suffix}"
