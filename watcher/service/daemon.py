"""The process: APScheduler calls the poller on an interval; nothing else lives here.

* ``max_instances=1`` and ``coalesce=True``: a slow tick is never overlapped or queued up; a
  failed poll backs off (``watcher.service.poller``). The daemon never exits on a transient error.
* With the ``ha`` block a :class:`~watcher.service.leader.Leader` gates each watch; scoring runs on
  a :class:`~watcher.scoring.worker.ScoringWorker` thread, never on the poll thread.
* SIGTERM/SIGINT set a stop event: the tick finishes the run in hand, then the process exits 0.
* ``Poller.request_tick(reason)`` (a webhook delivery, a tick that found work) starts a tick at
  once: right away when idle, or straight after the tick in hand, never two at a time.
* With the ``http`` block, ``watcher.service.http`` serves health, readiness, metrics and the MLflow
  webhook receiver from a thread; the poller feeds its ``Health``, webhooks call ``request_tick``.
* SIGHUP re-reads the config file between ticks (``watcher.service.reload``); the HTTP server and
  the lock connection are kept when their blocks did not change.
"""

from __future__ import annotations

import signal
from datetime import datetime, timezone
from pathlib import Path

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from mlflow import MlflowClient

from watcher.config import WatcherConfig
from watcher.obs.logs import get_logger
from watcher.scoring.engines import stop_engines
from watcher.scoring.worker import ScoringWorker
from watcher.service.health import Health, init_metrics
from watcher.service.http import HttpServer, build_app
from watcher.service.leader import Leader
from watcher.service.poller import Poller
from watcher.service.reload import Reloader
from watcher.store.client import make_client

log = get_logger("watcher.daemon")


def run_daemon(client: MlflowClient, config: WatcherConfig, config_path: str | Path | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 on a clean stop).

    With ``config_path``, SIGHUP re-reads that file between ticks (``watcher.service.reload``)."""
    leader = make_leader(config)
    init_metrics(config)  # every counter series at 0 from the start
    poller = Poller(client, config, leader=leader)
    parts: dict[str, HttpServer | None] = {"http": None}

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        poller.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(timezone="UTC")
    job = scheduler.add_job(poller.poll, IntervalTrigger(seconds=config.poll_interval_seconds), id="poll",
                            max_instances=1, coalesce=True, misfire_grace_time=None,
                            next_run_time=_utcnow())
    poller.kick = lambda: job.modify(next_run_time=_utcnow())
    try:
        parts["http"] = _start_http(poller, config)
    except RuntimeError as exc:
        log.error("http_failed", error=str(exc))
        if poller.leader is not None:
            poller.leader.close()
        return 1
    _start_scorer(poller, config)
    if config_path is not None:
        reloader = Reloader(config_path, lambda new, changed: _apply(poller, job, parts, new, changed),
                            lambda: poller.config)
        poller.before_poll = reloader.apply_pending

        def on_hup(_signum: int, _frame: object) -> None:
            log.info("reload_requested", signal="SIGHUP")
            reloader.request()
            poller.request_tick("reload")

        signal.signal(signal.SIGHUP, on_hup)
    log.info("watcher_started", tracking_uri=config.tracking_uri, watches=len(config.watches),
             poll_interval_seconds=config.poll_interval_seconds, ha=config.ha is not None,
             http=config.http is not None, discover=config.discover is not None)
    scheduler.start()
    try:
        while not poller.stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        if poller.scorer is not None:
            poller.scorer.stop()  # the scoring in hand finishes; its record is written before we exit
        if poller.leader is not None:
            poller.leader.close()
        if parts["http"] is not None:
            parts["http"].stop()
        stop_engines()  # the Spark session (JVM and workers), if one was ever started
    log.info("watcher_stopped")
    return 0


def _apply(poller: Poller, job: Job, parts: dict[str, HttpServer | None], new: WatcherConfig,
           changed: list[str]) -> None:
    """Put a reloaded config in force (on the poll thread, between ticks)."""
    poller.config = new
    poller.discover_at = 0.0  # search again at once: profiles or the tag may have changed
    if "tracking_uri" in changed or "registry_uri" in changed:
        poller.client = make_client(new)
    if "poll_interval_seconds" in changed:
        job.reschedule(IntervalTrigger(seconds=new.poll_interval_seconds))
    if "ha" in changed:
        if poller.leader is not None:
            poller.leader.close()  # between ticks: no registration is in hand
        poller.leader = make_leader(new)
    if poller.scorer is not None:
        poller.scorer.stop()
        poller.scorer = None
    _start_scorer(poller, new)
    if "http" in changed:
        if parts["http"] is not None:
            parts["http"].stop()
            parts["http"] = None
            poller.health = None
        parts["http"] = _start_http(poller, new)


def _start_scorer(poller: Poller, config: WatcherConfig) -> None:
    """The scoring thread, when any watch or profile scores (discovered watches take profiles)."""
    if any(w.scoring is not None for w in config.watches) or any(
            p.scoring is not None for p in config.profiles.values()):
        own_client = make_client(config)  # the worker's own client, as configured for the daemon
        leader = poller.leader
        poller.scorer = ScoringWorker(own_client, config, leading=leader.holds if leader else None)
        poller.scorer.lookup = poller.watch_for
        poller.scorer.start()


def make_leader(config: WatcherConfig, *, member: bool = True) -> Leader | None:
    """The replica's :class:`Leader` when the config has an ``ha`` block, else None; ``member``
    False for a one-off pass (``once``), which is not counted among the group's replicas."""
    return Leader(config.ha, member=member) if config.ha is not None else None


def _start_http(poller: Poller, config: WatcherConfig) -> HttpServer | None:
    """Serve the ``http`` block, if any; RuntimeError when it cannot listen (the daemon then exits 1)."""
    if config.http is None:
        return None
    from watcher.service.run_events import RunEventRouter
    from watcher.service.webhooks import Receiver

    poller.health = Health.for_config(config, poller.leader)
    router = RunEventRouter(lambda: poller.client, poller.watches)
    receiver = (Receiver(config, poller.request_tick, watches=poller.watches, run_events=router)
                if config.http.webhook_secret is not None else None)
    server = HttpServer(build_app(poller.health, config.http, receiver), config.http)
    server.start()
    log.info("http_listening", host=config.http.host, port=server.port, webhooks=receiver is not None)
    return server


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)

