"""``registry-watcher run``: the process built from the config (``watcher.service.process``), the
signals it answers, and nothing else.

* SIGTERM/SIGINT set the stop event: the tick finishes the run in hand, then the process stops its
  parts (the scheduler, the scoring in hand, the leader's locks, the HTTP server, any Spark session)
  and exits 0. The daemon never exits on a transient error.
* SIGHUP (when started with a config file) re-reads it between ticks (``watcher.service.reload``).
* An HTTP server that cannot listen at start-up is ``http_failed`` and exit 1.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from mlflow import MlflowClient

from watcher.config import WatcherConfig
from watcher.obs.logs import get_logger
from watcher.service.health import init_metrics
from watcher.service.leader import make_leader
from watcher.service.process import ServeError, build_process

__all__ = ["make_leader", "run_daemon"]
log = get_logger("watcher.daemon")


def run_daemon(client: MlflowClient, config: WatcherConfig, config_path: str | Path | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 on a clean stop).

    With ``config_path``, SIGHUP re-reads that file between ticks (``watcher.service.reload``)."""
    init_metrics(config)  # every counter series at 0 from the start
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        process = build_process(config, config_path, client=client, stop=stop)
    except ServeError as exc:
        log.error("http_failed", error=str(exc))
        return 1
    if config_path is not None:

        def on_hup(_signum: int, _frame: object) -> None:
            log.info("reload_requested", signal="SIGHUP")
            process.request_reload()

        signal.signal(signal.SIGHUP, on_hup)
    return process.run()
