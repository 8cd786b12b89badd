"""The console's fleet page for 1,000 watched models: render time, and the HTTP request end to end.

No MLflow: a fleet view of 1,000 models is built in memory (as the poller hands the console a tick's
report and snapshot), then ``/`` is rendered directly (cold: a new view version; the page is kept per
version after that) and requested over HTTP from the daemon's own server (uvicorn in a thread).
The issue's bar: ``/`` renders in at most 300 ms for 1,000 models.

    .venv/bin/python bench/bench_console.py [--models 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow.entities.model_registry import RegisteredModel, RegisteredModelAlias

from watcher.config import HttpConfig, WatchConfig, WatcherConfig
from watcher.console import Console
from watcher.engine import TickReport
from watcher.engine.report import WatchReport
from watcher.engine.snapshot import Snapshot
from watcher.service.health import Health
from watcher.service.http import HttpServer, build_app


def _fleet(n: int) -> tuple[WatcherConfig, TickReport]:
    watches = [WatchConfig(experiment=f"churn_exp_{i:04d}", model_name=f"customer_churn_model_{i:04d}")
               for i in range(n)]
    config = WatcherConfig(tracking_uri="http://127.0.0.1:5000", watches=watches,
                           http=HttpConfig(host="127.0.0.1", port=0))
    models = {w.model_name: RegisteredModel(w.model_name, aliases=[RegisteredModelAlias("staging", str(i % 7 + 2)),
                                                                     RegisteredModelAlias("production", str(i % 7 + 1))])
              for i, w in enumerate(watches)}
    reports = []
    for i, w in enumerate(watches):
        wr = WatchReport(w.model_name, w.experiment)
        if i % 3 == 0:
            wr.registered.append((f"{i:032x}", str(i % 7 + 2)))
        elif i % 3 == 1:
            wr.rejected.append((f"{i:032x}", "metric:recall: recall=0.12 < min 0.2; features: extra columns ['id']"))
        if i % 50 == 0:
            wr.poll_failed, wr.errors = True, ["RestException: PERMISSION_DENIED: no read on the experiment"]
        reports.append(wr)
    snap = Snapshot(MappingProxyType(models), MappingProxyType({w.experiment: str(i) for i, w in enumerate(watches)}),
                    frozenset())
    return config, TickReport(watches=reports, snapshot=snap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    config, report = _fleet(args.models)
    console = Console(lambda: None, lambda: config, lambda: config.watches)  # type: ignore[arg-type,return-value]
    renders, ticks = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        view = console.state.take_tick(config.watches, report, "")  # the state alone (no render)
        ticks.append(time.perf_counter() - started)
        started = time.perf_counter()
        page = console.pages.fleet_page(view)  # a new version each time: a cold render
        renders.append(time.perf_counter() - started)
    assert page.count("<tr data-state=") == args.models
    server = HttpServer(build_app(Health.for_config(config), config.http, extra_routes=console.routes()),  # type: ignore[arg-type]
                        config.http)  # type: ignore[arg-type]
    server.start()
    cold, warm = [], []
    try:
        url = f"http://127.0.0.1:{server.port}/"
        for _ in range(args.repeat):
            console.after_tick(config.watches, report, "")
            for bucket in (cold, warm):  # the first request after a tick renders; the next one is kept
                started = time.perf_counter()
                with urllib.request.urlopen(url, timeout=10) as resp:
                    body = resp.read()
                bucket.append(time.perf_counter() - started)
        size = len(body)
    finally:
        server.stop()

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"

    print(f"console / for {args.models} models ({size / 1024:.0f} KiB of HTML), {args.repeat} rounds")
    print(f"  view built at the end of a tick:              {ms(ticks)}")
    print(f"  render of / (a new view version; done at the end of the tick, on the poll thread): {ms(renders)}")
    print(f"  GET / over HTTP, first after a tick:          {ms(cold)}")
    print(f"  GET / over HTTP, page kept for the version:   {ms(warm)}")
    worst = max(statistics.median(renders), max(cold))
    print(f"  {'within' if worst <= 0.3 else 'OVER'} the 300 ms bar (median render {statistics.median(renders) * 1000:.1f} ms, "
          f"worst request {max(cold) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
