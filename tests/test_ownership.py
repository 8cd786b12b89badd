"""Item 1 of issue 26: a registered model is fed by one source.

The experiment that first feeds a model under this watcher claims it (the model's
``registry-watcher.source_experiment`` tag); a second experiment tagged with the same model is
refused (``watch_refused`` naming both experiments and the model, the gauge
``registry_watcher_watches_refused``) and none of its runs becomes a version; the owner goes on.
``claim`` moves ownership on purpose (audited); a tick refuses a stale discovered watch before it
decides any run; a model that already has versions is claimed only by the experiment they came from
(the upgrade path of models registered before claims existed).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import captured, events, staging, train, versions_of
from mlflow import MlflowClient
from prometheus_client import REGISTRY

from watcher.cli import main
from watcher.config import load_config
from watcher.engine.discovery import plan_watches
from watcher.service.poller import Poller
from watcher.store import keys
from watcher.store.audit import AuditTrail
from watcher.store.ownership import claim_records

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)]
TAG = "registry-watcher.model"


def _config_path(tmp_path: Path, tracking_uri: str) -> Path:
    path = tmp_path / "watcher.yaml"
    path.write_text(f"""tracking_uri: {tracking_uri}
poll_interval_seconds: 1
discover:
  interval_seconds: 3600
  backfill: all
profiles:
  default:
    gates: [{{metric: recall, min: 0.2}}]
""")
    return path


def _claim(client: MlflowClient, model: str) -> str | None:
    return (client.get_registered_model(model).tags or {}).get(keys.SOURCE_EXPERIMENT)


def _refused_gauge(model: str) -> float | None:
    return REGISTRY.get_sample_value("registry_watcher_watches_refused", {"model": model})


def _bare_run(client: MlflowClient, experiment_id: str) -> str:
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "recall", 0.5)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_second_experiment_is_refused_and_the_owner_is_still_staged(tmp_path: Path, tracking_uri: str,
                                                                    client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, team_a, team_d = f"own_model_{suffix}", f"own_a_{suffix}", f"own_d_{suffix}"
    a_id = client.create_experiment(team_a, tags={TAG: model})
    first = train(team_a, rows=400, n_estimators=4)
    poller = Poller(client, load_config(_config_path(tmp_path, tracking_uri)))
    report = poller.poll()
    assert report is not None and report.ok
    assert staging(client, model) == versions_of(client, model, first)[0].version
    assert _claim(client, model) == a_id  # the first experiment to feed it claimed it

    d_id = client.create_experiment(team_d, tags={TAG: model})
    intruder = train(team_d, rows=400, n_estimators=4)  # a passing run of the second experiment
    with captured() as logs:
        poller.discover(force=True)
        poller.poll()
    refused = [e for e in events(logs, "watch_refused") if e["experiment"] == team_d]
    assert len(refused) == 1
    said = refused[0]
    assert (said["experiment_id"], said["model_name"]) == (d_id, model)
    assert (said["owner_experiment"], said["owner_experiment_id"]) == (team_a, a_id)
    assert said["log_level"] == "warning"
    # the session's server holds other modules' tagged experiments (their refusals are theirs): only ours count
    assert [r.experiment for r in poller.discovery.refused_watches if suffix in r.experiment] == [team_d]
    assert team_d not in {w.experiment for w in poller.watches()}
    assert _refused_gauge(model) == 1.0
    assert versions_of(client, model, intruder) == []
    assert keys.DECISION not in client.get_run(intruder).data.tags  # never read, never decided

    later = train(team_a, rows=400, n_estimators=4, seed=11)  # the owner's next run is still staged
    poller.poll()
    assert staging(client, model) == versions_of(client, model, later)[0].version
    assert versions_of(client, model, intruder) == []
    with captured() as logs:
        poller.discover(force=True)
    assert not [e for e in events(logs, "watch_refused") if suffix in e["experiment"]]  # said once, not every search


def test_claim_moves_ownership_audited_and_a_stale_watch_is_refused_at_registration(
        tmp_path: Path, tracking_uri: str, client: MlflowClient, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, team_a, team_d = f"claim_model_{suffix}", f"claim_a_{suffix}", f"claim_d_{suffix}"
    a_id = client.create_experiment(team_a, tags={TAG: model})
    d_id = client.create_experiment(team_d, tags={TAG: model})
    path = _config_path(tmp_path, tracking_uri)
    config = load_config(path)

    plan = plan_watches(client, config)  # the CLI's view: the first-created experiment would claim; nothing written
    assert team_a in {w.experiment for w in plan.watches}
    assert [(r.experiment, r.owner_experiment_id) for r in plan.refused if suffix in r.experiment] == [(team_d, a_id)]
    assert client.search_registered_models(f"name = '{model}'") == []

    poller = Poller(client, config)
    poller.discover(force=True)
    assert _claim(client, model) == a_id
    assert {w.experiment for w in poller.watches()} >= {team_a} and team_d not in {w.experiment for w in poller.watches()}

    assert main(["claim", "--config", str(path), "--model", model, "--experiment", team_d,
                 "--reason", "team D owns churn now"]) == 0
    assert "now fed by" in capsys.readouterr().out
    assert _claim(client, model) == d_id
    records = claim_records(client, AuditTrail(config.audit_experiment), model)
    assert [(r.previous, r.current, r.reason) for r in records] == [
        (f"{team_a} ({a_id})", f"{team_d} ({d_id})", "team D owns churn now")]
    assert records[0].by

    # the daemon has not searched since: team A's watch is stale, and its tick refuses it before any run
    stale = _bare_run(client, a_id)
    with captured() as logs:
        poller.poll()
    refused = [e for e in events(logs, "watch_refused") if e.get("experiment") == team_a]
    assert refused and refused[0]["owner_experiment_id"] == d_id
    assert keys.DECISION not in client.get_run(stale).data.tags
    assert versions_of(client, model) == []

    poller.discover(force=True)  # the next search: D is watched, A refused
    assert team_d in {w.experiment for w in poller.watches()}
    assert [r.experiment for r in poller.discovery.refused_watches if suffix in r.experiment] == [team_a]
    capsys.readouterr()
    assert main(["claim", "--config", str(path), "--model", f"nope_{suffix}", "--experiment", team_d,
                 "--reason", "x"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: no registered model")


def test_a_model_with_versions_is_claimed_only_by_their_experiment(tmp_path: Path, tracking_uri: str,
                                                                   client: MlflowClient) -> None:
    suffix = uuid.uuid4().hex[:8]
    model, origin, other = f"old_model_{suffix}", f"old_origin_{suffix}", f"old_other_{suffix}"
    origin_id = client.create_experiment(origin)  # not tagged yet: an earlier release's configured watch
    run_id = _bare_run(client, origin_id)
    client.create_registered_model(model)
    client.create_model_version(model, f"{client.get_run(run_id).info.artifact_uri}/model", run_id=run_id)
    other_id = client.create_experiment(other, tags={TAG: model})
    poller = Poller(client, load_config(_config_path(tmp_path, tracking_uri)))
    with captured() as logs:
        poller.discover(force=True)
    said = [e for e in events(logs, "watch_refused") if e["experiment"] == other]
    assert said and said[0]["owner_experiment_id"] == origin_id and "claimed on purpose" in said[0]["reason"]
    assert _claim(client, model) is None  # refused until claimed on purpose, or until its origin is tagged

    client.set_experiment_tag(origin_id, TAG, model)  # the upgrade path: claimed from its versions' runs
    with captured() as logs:
        poller.discover(force=True)
    assert _claim(client, model) == origin_id
    assert [e["experiment_id"] for e in events(logs, "model_claimed") if e["model_name"] == model] == [origin_id]
    assert origin in {w.experiment for w in poller.watches()}
    assert [r.experiment for r in poller.discovery.refused_watches if suffix in r.experiment] == [other]
    assert other_id not in {r.owner_experiment_id for r in poller.discovery.refused_watches}
