"""The console (issue 29) in headless Chromium against a real daemon and a real MLflow server, and the
Grafana dashboard against the same daemon's live ``/metrics``.

Playwright drives Debian's ``chromium`` (``/usr/bin/chromium``; Playwright's own browser download is
not reachable here). Where it is missing, the browser tests fail and say how to install it. The
tests wait for the console (its JSON refresh endpoint), never for MLflow, and save screenshots into
the docs (``docs/img/console-*.png``)."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from daemon_proc import Daemon, get
from helpers import train

from watcher.testing import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
DASHBOARD = ROOT / "deploy" / "grafana" / "registry-watcher.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SUFFIX = r"_(total|bucket|sum|count|created)$"
"""A family with labels but no series yet (a model that never scored) is exported by its name only."""
FEATURES = ["orders_last_30d", "avg_delivery_delay_min", "complaints_90d", "discount_usage_rate", "tenure_days",
            "support_tickets_30d", "crisis_region", "app_sessions_7d"]


@pytest.fixture(scope="module")
def fleet(sqlite_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A daemon with ``http`` (the console on by default) over two watches: model A gets a
    registered run and a rejected one (an extra feature), model B a registered run."""
    import mlflow

    mlflow.set_tracking_uri(sqlite_server)
    suffix = uuid.uuid4().hex[:6]
    names = {"a": (f"console_exp_a_{suffix}", f"churn_a_{suffix}"), "b": (f"console_exp_b_{suffix}", f"churn_b_{suffix}")}
    gates = [{"metric": "recall", "min": 0.2}, {"metric": "precision", "min": 0.05}, {"features": FEATURES}]
    port = free_port()
    config = {"tracking_uri": sqlite_server, "poll_interval_seconds": 2,
              "http": {"host": "127.0.0.1", "port": port},
              "watches": [{"experiment": e, "model_name": m, "artifact_path": "model", "gates": gates}
                          for e, m in names.values()]}
    path = tmp_path_factory.mktemp("console") / "watcher.yaml"
    path.write_text(yaml.safe_dump(config))
    runs = {"good_a": train(names["a"][0]), "bad_a": train(names["a"][0], "extra_feature"),
            "good_b": train(names["b"][0])}
    daemon = Daemon(path)
    base = f"http://127.0.0.1:{port}"
    try:
        daemon.wait_for("http_listening", 120)
        _wait_fleet(base, daemon, {names["a"][1], names["b"][1]})
        yield {"base": base, "names": names, "runs": runs, "daemon": daemon}
    finally:
        daemon.stop()


def _wait_fleet(base: str, daemon: Daemon, models: set[str], timeout: float = 180) -> None:
    """Until the console's rows show a staging version for every model: a condition on the console
    (its refresh endpoint), polled at short intervals with a deadline; MLflow is never asked."""
    deadline = time.monotonic() + timeout
    rows = ""
    while time.monotonic() < deadline:
        status, body = get(base + "/console/fleet.json")
        rows = json.loads(body)["sections"]["fleet-rows"] if status == 200 else ""
        if all(re.search(rf">{re.escape(m)}</a></td>\s*<td class=\"version\" data-sort=\"\d+\">v\d+", rows)
               for m in models):
            return
        assert daemon.proc.poll() is None, "".join(daemon.raw[-30:])
        time.sleep(0.25)
    raise AssertionError(f"the console never showed a staging version for every model; last rows:\n{rows}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: install it with `apt-get install chromium` (Debian; `make test` tries to). "
                    "Playwright's own browser download is not used.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        launched = play.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page with every console message, page error, failed request, 4xx/5xx answer and foreign host recorded."""

    def __init__(self, browser: object, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
        self.problems: list[str] = []
        host = urlsplit(base).netloc
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"requestfailed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
        self.page.on("request", lambda r: None if urlsplit(r.url).netloc == host or r.url.startswith("data:")
                     else self.problems.append(f"another host: {r.url}"))


def test_fleet_lists_every_model_and_the_model_page_shows_the_rejection(fleet, browser):
    base, names, runs = fleet["base"], fleet["names"], fleet["runs"]
    watched = Watched(browser, base)
    page = watched.page
    page.goto(base + "/")
    page.wait_for_selector("table#fleet tbody tr")
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "console-fleet.png"), full_page=True)
    for _experiment, model in names.values():
        link = page.get_by_role("link", name=model, exact=True)
        assert link.count() == 1
        row = page.locator("table#fleet tbody tr", has=link)
        assert re.fullmatch(r"v\d+", row.locator("td").nth(1).inner_text().strip())
    page.fill("#filter", names["b"][1])
    assert page.locator("table#fleet tbody tr:not(.hidden)").count() == 1
    page.fill("#filter", "")
    page.get_by_role("link", name=names["a"][1], exact=True).click()
    page.wait_for_selector("#model-runs table")
    rejected = page.locator("#model-runs tr[data-decision='rejected']")
    assert rejected.count() == 1
    assert runs["bad_a"] in rejected.inner_text() and "feature" in rejected.locator("td.reason").inner_text()
    marks = page.locator("#model-charts svg circle.mark")
    charts = page.locator("#model-charts svg").count()
    assert charts >= 1 and marks.count() >= 2 * charts  # one mark per run on every chart
    assert page.locator("#model-charts svg circle.mark.pass").count() >= 1
    page.screenshot(path=str(IMG / "console-model.png"), full_page=True)
    rejected.get_by_role("link", name=runs["bad_a"]).click()
    page.wait_for_selector("table.gates")
    assert "FAIL" in page.locator("table.gates").inner_text()
    page.screenshot(path=str(IMG / "console-run.png"), full_page=True)
    assert watched.problems == []


def test_the_page_refreshes_in_place_without_a_reload(fleet, browser):
    base = fleet["base"]
    watched = Watched(browser, base)
    page = watched.page
    page.goto(base + "/")
    page.evaluate("window.__marker = 1")
    with page.expect_response(lambda r: "/console/fleet.json" in r.url, timeout=30_000) as answer:
        pass
    assert answer.value.status == 200
    assert page.evaluate("window.__marker") == 1  # the same document: no reload
    assert watched.problems == []


def _exported(base: str) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    status, text = get(base + "/metrics")
    assert status == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_dashboard_panel_queries_a_metric_the_daemon_exports(fleet):
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported(fleet["base"])
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert panels
    for panel in panels:
        exprs = [t["expr"] for t in panel.get("targets", [])]
        assert exprs, panel["title"]
        for expr in exprs:
            used = set(re.findall(r"registry_watcher_[a-z_]+", expr))
            assert used, expr
            unknown = {m for m in used if m not in exported and re.sub(SUFFIX, "", m) not in exported}
            assert not unknown, f"panel '{panel['title']}' queries {unknown}, not in the daemon's /metrics"
