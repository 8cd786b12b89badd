"""Issue 26, item 2 (bulkheads): one watch's failure is that watch's, never the fleet's.

* Logic, on an in-process store: a watch whose gates raise, whose registry writes fail, or whose
  experiment cannot be read fails alone (``TickReport.failed_watches``); the daemon's bulkheads
  say ``watch_failed`` once, hold it out until its own backoff has passed, and it recovers with no
  restart (``watch_recovered``); the gauge follows. A failing batched read is split.
* Acceptance, on ``mlflow server --app-name basic-auth``: the watcher's own user is denied one
  team's experiment after both were seen (so only the readability check can tell: MLflow answers
  the batched run search over it with no runs); the other team's run is staged, ``watch_failed``
  names the denied experiment, the daemon stays up, and once access is granted again the denied
  team's run is staged with no restart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import MappingProxyType

import pytest
from daemon_proc import Daemon, get
from helpers import captured, events, train
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, PERMISSION_DENIED

from tests.auth_server import start_auth_server, stop
from watcher.config import WatchConfig, WatcherConfig
from watcher.engine import Session, reconcile_once
from watcher.engine.bulkheads import read_fleet
from watcher.engine.snapshot import Snapshot
from watcher.obs import metrics_fleet
from watcher.service.poller import Poller, PollState
from watcher.service.watch_states import WatchStates, watch_key
from watcher.store import registry
from watcher.testing import free_port

LOCAL = pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)
PASSING = [{"metric": "recall", "min": 0.0}]


def _watch(experiment: str, model: str, gates: list[dict] | None = None) -> WatchConfig:
    return WatchConfig(experiment=experiment, model_name=model, artifact_path="model", gates=gates or PASSING)


def _up(watch: str) -> float:
    return metrics_fleet.WATCH_UP.labels(watch=watch)._value.get()


@LOCAL
def test_a_watch_whose_gates_raise_fails_alone_is_held_out_and_recovers(tracking_uri, client, names):
    ok, bad = _watch(names["experiment"] + "_ok", names["model"] + "_ok"), \
        _watch(names["experiment"] + "_bad", names["model"] + "_bad", [{"handler": "gates_for_tests:explodes"}])
    config = WatcherConfig(tracking_uri=tracking_uri, watches=[ok, bad])
    now = [0.0]
    state = PollState(states=WatchStates(clock=lambda: now[0]))
    train(ok.experiment)
    train(bad.experiment)
    key = watch_key(bad.experiment, bad.model_name)
    with captured() as logs:
        first = Poller(client, config, state=state).poll()
        assert first is not None and not first.outage
        assert [w.model_name for w in first.failed_watches] == [bad.model_name]
        assert "boom" in first.failed_watches[0].failure
        assert [w.model_name for w in first.watches if w.registered] == [ok.model_name]
        [failed] = events(logs, "watch_failed")
        assert failed["watch"] == key and failed["experiment"] == bad.experiment and "boom" in failed["reason"]
        assert failed["experiment_id"] == client.get_experiment_by_name(bad.experiment).experiment_id
        assert _up(key) == 0 and _up(watch_key(ok.experiment, ok.model_name)) == 1
        assert "gate raised" in first.failed_watches[0].failure  # its run is rejected, as a raising gate says
        train(bad.experiment)
        held = Poller(client, config, state=state).poll()  # within its backoff: not polled, still failed
        assert held is not None and [w.model_name for w in held.failed_watches] == [bad.model_name]
        assert len(events(logs, "run_rejected")) == 1 and len(events(logs, "watch_failed")) == 1
        fixed = config.model_copy(update={"watches": [ok, _watch(bad.experiment, bad.model_name)]})
        now[0] += config.bulkheads.retry.initial_seconds  # its backoff passed; the gate is fixed (a reload)
        again = Poller(client, fixed, state=state).poll()
    assert again is not None and not again.failed_watches
    assert [w.model_name for w in again.watches if w.registered] == [bad.model_name]
    [recovered] = events(logs, "watch_recovered")
    assert recovered["watch"] == key and _up(key) == 1
    assert [s.state for s in state.states.views()] == ["ok", "ok"]


@LOCAL
def test_a_registry_write_failure_fails_only_that_watch(tracking_uri, client, names, monkeypatch):
    ok, bad = _watch(names["experiment"] + "_ok", names["model"] + "_ok"), \
        _watch(names["experiment"] + "_bad", names["model"] + "_bad")
    config = WatcherConfig(tracking_uri=tracking_uri, watches=[ok, bad])
    train(ok.experiment)
    train(bad.experiment)
    real = registry.find_or_create_version

    def refuse(client, model_name, *args, **kwargs):
        if model_name == bad.model_name:
            raise MlflowException("registry write refused", error_code=PERMISSION_DENIED)
        return real(client, model_name, *args, **kwargs)

    monkeypatch.setattr(registry, "find_or_create_version", refuse)
    report = reconcile_once(client, config, session=Session())
    [failed] = report.failed_watches
    assert failed.model_name == bad.model_name and failed.failure_kind == "error"
    assert "registry write refused" in failed.failure and not report.outage
    assert [w.model_name for w in report.watches if w.registered] == [ok.model_name]


@LOCAL
def test_an_experiment_that_cannot_be_read_fails_its_watch_in_the_tick(tracking_uri, client, names, monkeypatch):
    ok, bad = _watch(names["experiment"] + "_ok", names["model"] + "_ok"), \
        _watch(names["experiment"] + "_bad", names["model"] + "_bad")
    config = WatcherConfig(tracking_uri=tracking_uri, watches=[ok, bad])
    train(ok.experiment)
    real = MlflowClient.get_experiment_by_name

    def denied(self, name):
        if name == bad.experiment:
            raise MlflowException("Permission denied", error_code=PERMISSION_DENIED)
        return real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", denied)
    report = reconcile_once(client, config, session=Session(experiments=type(Session().experiments)()))
    [failed] = report.failed_watches
    assert failed.model_name == bad.model_name and failed.failure_kind == "unreadable"
    assert "PERMISSION_DENIED" in failed.failure and not report.outage
    assert [w.model_name for w in report.watches if w.registered] == [ok.model_name]


def test_a_failing_batch_is_split_so_one_bad_experiment_does_not_fail_it():
    watches = [_watch(f"e{i}", f"m{i}") for i in range(7)]
    reads: list[int] = []

    def read(part):
        reads.append(len(part))
        if any(w.experiment == "e5" for w in part):
            raise MlflowException("bad experiment in the batch", error_code=INVALID_PARAMETER_VALUE)
        return Snapshot(MappingProxyType({}), MappingProxyType({w.experiment: w.experiment[1:] for w in part}),
                        frozenset(w.experiment[1:] for w in part))

    snap, failed = read_fleet(read, watches)
    assert [w.experiment for w in failed] == ["e5"] and failed[0].failure_kind == "unreadable"
    assert sorted(snap.experiment_ids) == ["e0", "e1", "e2", "e3", "e4", "e6"]
    assert snap.busy == frozenset({"0", "1", "2", "3", "4", "6"})
    assert len(reads) <= 1 + 2 * 3  # halves down to one: a few reads, not one per watch


def _yaml(uri: str, a: tuple[str, str], b: tuple[str, str], http_port: int) -> str:
    watches = "".join(f"""  - experiment: {exp}
    model_name: {model}
    artifact_path: model
    gates:
      - metric: recall
        min: 0.0
""" for exp, model in (a, b))
    return f"""tracking_uri: {uri}
poll_interval_seconds: 1
http: {{host: 127.0.0.1, port: {http_port}}}
bulkheads: {{readability_check_seconds: 1, retry: {{initial_seconds: 0.5, max_seconds: 1}}}}
watches:
{watches}"""


def _watches(base: str) -> dict[str, dict]:
    status, body = get(f"{base}/api/v1/watches")
    assert status == 200, body
    return {w["experiment"]: w for w in json.loads(body)["watches"]}


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return found


@pytest.mark.integration
@pytest.mark.timeout(420)
def test_a_denied_experiment_fails_its_watch_alone_and_recovers_with_no_restart(tmp_path: Path, names, monkeypatch):
    # No login changes here, only grants (read at every request, cache or not): a cached login spares the
    # one-worker server a scrypt check per request, which under load made each tick of the daemon take a minute.
    srv = start_auth_server(tmp_path / "auth", default_permission="MANAGE", auth_cache_ttl_seconds=3600)
    daemon = None
    try:
        srv.create_user("watcher", "watcher-password-1")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")  # the teams train as admin
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", srv.admin_password)
        admin = MlflowClient(srv.uri)
        a = (names["experiment"] + "_team_a", names["model"] + "_a")
        b = (names["experiment"] + "_team_b", names["model"] + "_b")
        b_id = admin.create_experiment(b[0])
        admin.create_experiment(a[0])
        http_port = free_port()
        config = tmp_path / "watcher.yaml"
        config.write_text(_yaml(srv.uri, a, b, http_port))
        daemon = Daemon(config, env={"MLFLOW_TRACKING_URI": srv.uri, "MLFLOW_TRACKING_USERNAME": "watcher",
                                     "MLFLOW_TRACKING_PASSWORD": "watcher-password-1"})
        base = f"http://127.0.0.1:{http_port}"
        _wait(lambda: get(f"{base}/readyz")[0] == 200, 120, "the daemon never got ready")
        assert _watches(base)[b[0]]["experiment_id"] == b_id  # both seen: b's id is known to the watcher
        srv.grant("watcher", "experiment", b_id, "DENY")  # a batched run search now silently skips b
        train(a[0])
        run_b = train(b[0])
        failed = daemon.wait_for("watch_failed", timeout=60, where=lambda e: e.get("experiment") == b[0])
        assert failed["experiment_id"] == b_id and failed["watch"] == f"{b[0]} -> {b[1]}"
        assert "PERMISSION_DENIED" in failed["reason"] or "403" in failed["reason"]
        daemon.wait_for("run_registered", timeout=90, where=lambda e: e.get("model_name") == a[1])
        assert admin.get_registered_model(a[1]).aliases.get("staging")
        state = _watches(base)
        assert state[b[0]]["state"] == "failed" and state[a[0]]["state"] == "ok" and state[b[0]]["reason"]
        assert get(f"{base}/readyz")[0] == 200  # one team's permission is not the replica's readiness
        assert daemon.proc.poll() is None
        srv.revoke("watcher", "experiment", b_id)
        daemon.wait_for("watch_recovered", timeout=60, where=lambda e: e.get("experiment") == b[0])
        registered = daemon.wait_for("run_registered", timeout=90, where=lambda e: e.get("model_name") == b[1])
        assert registered["run_id"] == run_b and admin.get_registered_model(b[1]).aliases.get("staging")
        assert _watches(base)[b[0]]["state"] == "ok" and daemon.proc.poll() is None
    finally:
        if daemon is not None:
            assert daemon.stop() == 0
        stop(srv.proc)
