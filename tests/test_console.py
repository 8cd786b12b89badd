"""The console (issue 29), server side: escaping, no secrets, 404s, the refresh endpoint, ``http.console: false``.

No MLflow server: the fleet state is fed reports by hand (as the poller does after each tick), the
model page's reads are given by a stub, and the process test builds the real daemon around an
in-process SQLite store (nothing is polled)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from daemon_proc import LiveClient

from watcher.config import load_config
from watcher.console import Console, Providers, RefusedWatch
from watcher.console.charts import charts
from watcher.console.detail import ModelDetail, RunRow
from watcher.console.links import UiLinks
from watcher.engine import TickReport
from watcher.engine.report import WatchReport
from watcher.service.http import build_app
from watcher.service.process import build_process

SCRIPT = "<script>alert('x')</script>"
PASSWORD = "s3cret-pw-9"
SECRET = "webhook-secret-value-77"


def _config(tmp_path: Path, **http: object):
    data = {"tracking_uri": f"http://alice:{PASSWORD}@127.0.0.1:9/", "poll_interval_seconds": 3600,
            "http": {"host": "127.0.0.1", "port": 0, "webhook_secret": SECRET, **http},
            "watches": [{"experiment": "exp-a", "model_name": "model-a"},
                        {"experiment": "exp-b", "model_name": f"weird/{SCRIPT}"}]}
    path = tmp_path / "watcher.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def _report() -> TickReport:
    return TickReport(watches=[
        WatchReport("model-a", "exp-a", rejected=[("a" * 32, f"recall=0.1 < min 0.2 {SCRIPT}")]),
        WatchReport(f"weird/{SCRIPT}", "exp-b", poll_failed=True,
                    errors=[f"ConnectionError: http://alice:{PASSWORD}@127.0.0.1:9/api failed"])])


def _detail() -> ModelDetail:
    gates = ({"gate": "metric:recall", "passed": False, "value": 0.1, "threshold": {"min": 0.2},
              "reason": f"recall=0.1 {SCRIPT}"},)
    good = ({"gate": "metric:recall", "passed": True, "value": 0.4, "threshold": {"min": 0.2}, "reason": ""},)
    runs = (RunRow("a" * 32, SCRIPT, "rejected", f"recall=0.1 < min 0.2 {SCRIPT}", None, "2026-12-03T10:00:00Z", gates),
            RunRow("b" * 32, "good", "registered", "", "1", "2026-12-03T09:00:00Z", good))
    return ModelDetail((), runs, tuple(charts([("b" * 32, good), ("a" * 32, gates)])), (), "2026-12-03T10:00:01Z")


@pytest.fixture()
def served(tmp_path):
    config = _config(tmp_path)
    console = Console(lambda: None, lambda: config, lambda: config.watches,  # type: ignore[arg-type,return-value]
                      Providers(approvals=lambda: {"model-a": 2}, refused=lambda: {
                          "exp-c": RefusedWatch("exp-c", "model-a", f"model-a is fed by exp-a {SCRIPT}")}))
    console.details.model_detail = lambda watch: _detail()  # type: ignore[method-assign]
    console.details.run_explained = lambda run_id: None  # type: ignore[method-assign]
    from watcher.service.health import Health

    live = LiveClient(build_app(Health.for_config(config), config.http, extra_routes=console.routes()))
    try:
        yield console, live
    finally:
        live.close()


def test_fleet_lists_every_model_failed_and_refused_first_everything_escaped(served):
    console, live = served
    console.after_tick(console._watches(), _report(), "")
    page = live.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    body = page.text
    assert SCRIPT not in body and "&lt;script&gt;" in body  # names and reasons are text
    assert "'self'" in page.headers["content-security-policy"] and "unsafe-inline" not in page.headers[
        "content-security-policy"]
    states = re.findall(r'<tr data-state="(\w+)"', body)
    assert states == ["failed", "refused", "ok"]
    assert '<a href="/models/model-a">model-a</a>' in body  # the link's text is exactly the name
    assert "approvals pending" in body and "events undelivered" not in body  # columns only where a provider is
    assert PASSWORD not in body and SECRET not in body


def test_model_page_shows_runs_chart_and_escapes_the_reason(served):
    console, live = served
    console.after_tick(console._watches(), _report(), "")
    page = live.get("/models/model-a")
    assert page.status_code == 200
    assert SCRIPT not in page.text and "recall=0.1 &lt; min 0.2 &lt;script&gt;" in page.text
    assert page.text.count("<circle") == 2 and 'class="mark fail"' in page.text and 'class="mark pass"' in page.text
    assert "a" * 32 in page.text
    assert PASSWORD not in page.text and "http://127.0.0.1:9/#/experiments" not in page.text  # no id known: no link
    encoded = live.get("/models/weird%2F%3Cscript%3Ealert('x')%3C%2Fscript%3E")
    assert encoded.status_code == 200 and SCRIPT not in encoded.text


def test_unknown_pages_are_404_and_the_favicon_is_served(served):
    _console, live = served
    assert live.get("/models/nobody").status_code == 404
    assert live.get("/runs/" + "0" * 32).status_code == 404
    assert live.get("/runs/bad%20id").status_code == 404
    assert live.get("/console/static/nothing.css").status_code == 404
    with urllib.request.urlopen(live.base + "/favicon.ico", timeout=10) as icon:  # binary: not through LiveClient
        assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon" and icon.read()[:4] == b"\0\0\1\0"
    assert live.get("/console/static/console.js").status_code == 200
    assert live.get("/console/model.json?name=nobody").status_code == 404


def test_refresh_endpoint_sends_rows_only_when_they_changed(served):
    console, live = served
    console.after_tick(console._watches(), TickReport(), "")
    first = live.get("/console/fleet.json").json()
    assert set(first["sections"]) == {"fleet-rows", "fleet-summary"} and "model-a" in first["sections"]["fleet-rows"]
    assert live.get(f"/console/fleet.json?since={first['version']}").json() == {"version": first["version"],
                                                                              "unchanged": True}
    console.after_tick(console._watches(), _report(), "")
    second = live.get(f"/console/fleet.json?since={first['version']}").json()
    assert second["version"] != first["version"] and "recall=0.1" in second["sections"]["fleet-rows"]
    assert SCRIPT not in second["sections"]["fleet-rows"]
    model = live.get("/console/model.json?name=model-a").json()
    assert {"model-charts", "model-runs"} <= set(model["sections"])
    assert live.get(f"/console/model.json?name=model-a&since={model['version']}").json()["unchanged"] is True


def test_a_failed_tick_marks_every_watch_failed_without_its_password(served):
    console, live = served
    console.after_tick(console._watches(), None, f"ConnectionError: http://alice:{PASSWORD}@127.0.0.1:9/ down")
    body = live.get("/").text
    assert body.count('data-state="failed"') == 2 and PASSWORD not in body


def test_links_never_carry_credentials(tmp_path):
    links = UiLinks.from_config(_config(tmp_path))
    assert links.base == "http://127.0.0.1:9"
    assert links.run_link("3", "abc") == "http://127.0.0.1:9/#/experiments/3/runs/abc"
    assert links.version_link("a/b", "2") == "http://127.0.0.1:9/#/models/a%2Fb/versions/2"
    assert UiLinks(None).run_link("3", "abc") is None


@pytest.mark.parametrize("console_on", [True, False])
def test_http_console_false_turns_the_pages_off_and_keeps_the_rest(tmp_path, console_on):
    config = _config(tmp_path, console=console_on)
    from mlflow import MlflowClient

    process = build_process(config, client=MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))
    try:
        port = process._parts.http.port  # type: ignore[union-attr]
        from daemon_proc import get

        base = f"http://127.0.0.1:{port}"
        assert get(base + "/")[0] == (200 if console_on else 404)
        assert get(base + "/console/static/console.css")[0] == (200 if console_on else 404)
        assert get(base + "/metrics")[0] == 200
        assert get(base + "/healthz")[0] in (200, 503)
    finally:
        process._stop_parts()
