"""Scoring never blocks registration: a scoring held open on the worker thread (until the test
releases it) while the poll thread registers a newly finished run; the once-per-change guarantee
holds across a restart. No sleeps stand in for the scoring: it ends when the test says so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import slow_scorer
from helpers import train

from watcher.engine.promotion import promote
from watcher.scoring.worker import ScoringWorker
from watcher.service.poller import Poller
from watcher.store import codec
from watcher.store import keys as state

pytestmark = [pytest.mark.parametrize("tracking_uri", ["local"], indirect=True)]  # logic: in-process SQLite


def _until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.timeout(600)
def test_a_scoring_in_hand_does_not_delay_registration(client, make_config, names, tmp_path: Path):
    slow_scorer.STARTED.clear()
    slow_scorer.RELEASE.clear()
    scoring_experiment = f"{names['experiment']}_scoring"
    config = make_config(extra_watch=(
        "    scoring:\n      input: data/none.csv\n      handler: slow_scorer:slow\n"
        f"      experiment: {scoring_experiment}\n"))
    model = names["model"]
    worker = ScoringWorker(client, config).start()
    poller = Poller(client, config, scorer=worker)
    try:
        train(names["experiment"])
        [(_, v1)] = poller.poll().watches[0].registered
        promote(client, config.watches[0], v1, "first release", "alice")
        poller.poll()  # records the change and hands the model to the worker
        assert slow_scorer.STARTED.wait(60), "the worker never started scoring"
        assert worker.busy_with == model
        scoring_started = time.monotonic()
        second = train(names["experiment"], seed=11)
        client.log_metric(second, "recall", 0.99, step=1)  # beats the champion, whatever the seed gave
        polls = 0
        registered: list = []
        while not registered and polls < 3:
            polls += 1
            registered = poller.poll().watches[0].registered
        assert [r for r, _ in registered] == [second], f"not registered within 3 polls ({polls})"
        assert worker.busy_with == model  # the scoring is still held open: registration did not wait for it
        assert not slow_scorer.RELEASE.is_set()
        print(f"registered in poll {polls}, {time.monotonic() - scoring_started:.1f}s into a scoring still in hand")
        slow_scorer.RELEASE.set()
        _until(worker.idle, 60, "the scoring to finish")
        experiment = client.get_experiment_by_name(scoring_experiment)
        [run] = client.search_runs([experiment.experiment_id], "")
        assert run.info.status == "FINISHED" and run.data.tags["model_version"] == v1
        scored = codec.load(client.get_registered_model(model).tags[state.SCORED])
        assert scored["model_version"] == v1 and scored["run_id"] == run.info.run_id
        done = worker.done
        poller.poll()
        assert worker.done == done and worker.idle()  # a scored change is not handed over again
    finally:
        worker.stop()
    restarted = ScoringWorker(client, config).start()  # a restart: new worker, new poller
    try:
        Poller(client, config, scorer=restarted).poll()
        _until(restarted.idle, 60, "the restarted worker")
        assert len(client.search_runs([experiment.experiment_id], "")) == 1
    finally:
        restarted.stop()
