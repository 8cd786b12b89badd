"""Point 3 of issue 19: an idle poll's requests do not grow with the number of watches.

The regression guard: the same idle tick, counted at the client (every REST call goes through
``mlflow.utils.rest_utils.http_request``), costs as many requests for one watch as for eight.
A run that finishes in any experiment of the fleet is still decided by the next tick.
"""

from __future__ import annotations

import uuid

import mlflow.utils.rest_utils as rest_utils
import pytest
from helpers import staging, train
from mlflow import MlflowClient

from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import Session, TickOptions, reconcile_once

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)]


def _finished_run(client: MlflowClient, experiment_id: str) -> str:
    run = client.create_run(experiment_id, tags={"team": "fleet"})
    client.log_metric(run.info.run_id, "recall", 0.5)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _fleet(client: MlflowClient, tracking_uri: str, size: int) -> tuple[WatcherConfig, list[str]]:
    suffix = uuid.uuid4().hex[:8]
    watches, ids = [], []
    for i in range(size):
        name = f"fleet_{suffix}_{i}"
        ids.append(client.create_experiment(name))
        for _ in range(2):
            _finished_run(client, ids[-1])  # no model logged: rejected, so decided
        watches.append(WatchConfig(experiment=name, model_name=f"fleet_model_{suffix}_{i}",
                                   gates=[{"metric": "recall", "min": 0.2}]))
    return WatcherConfig(tracking_uri=tracking_uri, watches=watches), ids


def _idle_requests(client: MlflowClient, config: WatcherConfig, monkeypatch: pytest.MonkeyPatch,
                   session: Session) -> int:
    count = {"n": 0}
    original = rest_utils.http_request

    def counting(*args, **kwargs):
        count["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", counting)
    try:
        report = reconcile_once(client, config, session=session)
    finally:
        monkeypatch.setattr(rest_utils, "http_request", original)
    assert report.ok and not any(w.registered or w.rejected for w in report.watches)
    return count["n"]


def test_idle_poll_costs_the_same_for_one_and_eight_watches(tracking_uri: str, client: MlflowClient,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {}
    for size in (1, 8):
        config, ids = _fleet(client, tracking_uri, size)
        session = Session()
        first = reconcile_once(client, config, session=session)
        assert sum(len(w.rejected) for w in first.watches) == 2 * size
        reconcile_once(client, config, session=session)  # settled: cursors written, cache loaded
        counts[size] = _idle_requests(client, config, monkeypatch, session)
        if size == 8:  # a run finishing anywhere in the fleet is decided by the next tick
            run_id = _finished_run(client, ids[5])
            report = reconcile_once(client, config, session=session)
            assert [r for w in report.watches for r, _reason in w.rejected] == [run_id]
            assert report.watches[5].rejected
    assert counts[8] == counts[1], counts
    assert counts[1] <= 4, counts  # models, one run scan, the audit trail (and its experiment's lookup)


def test_an_alias_moved_between_ticks_is_seen_through_the_cache(tracking_uri: str, client: MlflowClient,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit cache never hides a move: an external production move between two ticks of one
    session is recorded once, and the next idle tick is back to the fixed request count."""
    from watcher.store import audit

    config, ids = _fleet(client, tracking_uri, 3)
    session = Session()
    reconcile_once(client, config, session=session)
    reconcile_once(client, config, session=session)
    idle = _idle_requests(client, config, monkeypatch, session)
    model = config.watches[1].model_name
    run = client.create_run(ids[1])
    client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(model, "production", version.version)
    reconcile_once(client, config, session=session)
    moves = audit.entries(client, config.audit_experiment, model, "production")
    assert [(e.version, e.by, e.action) for e in moves] == [(str(version.version), "external", "observed")]
    reconcile_once(client, config, session=session)  # the dirty alias is read directly once more
    assert len(audit.entries(client, config.audit_experiment, model, "production")) == 1
    # settled again: the fixed count (the audit experiment's search now instead of its lookup)
    assert _idle_requests(client, config, monkeypatch, session) == idle


def test_a_run_event_tick_puts_only_the_registration_between_run_end_and_staging(
        tracking_uri: str, client: MlflowClient, names: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20's latency: a tick for a run event (``scan=False``) skips the fleet's search for
    experiments with work, and the audit trail is read after the staging move, not before; the
    version lookup runs beside the gates. What is left before the alias: the model, the run search,
    the model's own files, the version, the intent."""
    config = WatcherConfig(tracking_uri=tracking_uri, watches=[WatchConfig(
        experiment=names["experiment"], model_name=names["model"], gates=[{"metric": "recall", "min": 0.0}])])
    session = Session()
    train(names["experiment"])
    reconcile_once(client, config, session=session)  # warm: the model, the audit experiment, the caches
    run_id = train(names["experiment"])
    calls: list[tuple[str, str, object]] = []
    original = rest_utils.http_request

    def recording(host_creds, endpoint, method, *args, **kwargs):
        calls.append((method, endpoint.split("/mlflow/")[-1], kwargs.get("json")))
        return original(host_creds, endpoint, method, *args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", recording)
    report = reconcile_once(client, config, session=session, options=TickOptions(scan=False))
    monkeypatch.setattr(rest_utils, "http_request", original)
    assert [r for r, _v in report.watches[0].registered] == [run_id]
    assert staging(client, names["model"]) == report.watches[0].registered[0][1]
    moved = calls.index(("POST", "registered-models/alias", {"name": names["model"], "alias": "staging",
                                                              "version": report.watches[0].registered[0][1]}))
    before = [(method, endpoint) for method, endpoint, _ in calls[:moved]]
    searches = [body for method, endpoint, body in calls[:moved] if endpoint == "runs/search"]
    audit_id = client.get_experiment_by_name(config.audit_experiment).experiment_id
    assert len(searches) == 1 and audit_id not in searches[0]["experiment_ids"], before  # type: ignore[index]
    assert before.count(("GET", "registered-models/search")) == 1, before
    assert any(endpoint == "runs/search" and audit_id in body["experiment_ids"]  # type: ignore[index]
               for _m, endpoint, body in calls[moved:]), calls[moved:]
