"""The NATS output against a real JetStream server (the machine's at 127.0.0.1:4222, and one of our
own for the restart): stream created, ``Nats-Msg-Id`` = ``ce-id``, a duplicate publish dropped, a
replay stored under ``<id>.replay.<n>``, subjects sanitised, a publish through a server restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import mlflow
import nats
import pytest
from nats.js.api import RawStreamMsg, StreamInfo

from watcher.config.events import NatsOutputConfig
from watcher.events.model import OutgoingEvent, event_id, sequence_of
from watcher.events.outputs.nats import NatsOutput, event_subject, subject_token
from watcher.testing import free_port

pytestmark = pytest.mark.integration
NATS_URL = "nats://127.0.0.1:4222"


def _nats_up(host: str = "127.0.0.1", port: int = 4222) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def moved(model: str = "churn", version: str = "7") -> OutgoingEvent:
    """An ``alias.moved`` event as the daemon makes it."""
    return OutgoingEvent(
        id=event_id("alias.moved", f"{model}:staging:{version}"), type="io.registry-watcher.alias.moved",
        source="registry-watcher/test", subject=model, time=datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc),
        sequence=sequence_of(1_796_292_000_000, int(version)), model=model,
        data={"model": model, "alias": "staging", "version": version, "previous_version": None,
              "moved_by": "registry-watcher", "reason": "passed gates", "model_uri": f"models:/{model}/{version}"})


def js_call(url: str, fn: Any) -> Any:
    """Run ``fn(jsm)`` on a fresh connection (the test's own, not the output's)."""
    async def go() -> Any:
        nc = await nats.connect(url)
        try:
            return await fn(nc.jsm())
        finally:
            await nc.close()
    return asyncio.run(go())


def stream_info(url: str, stream: str) -> StreamInfo:
    return cast(StreamInfo, js_call(url, lambda jsm: jsm.stream_info(stream)))


def stored(url: str, stream: str, seq: int) -> RawStreamMsg:
    return cast(RawStreamMsg, js_call(url, lambda jsm: jsm.get_msg(stream, seq)))


@pytest.fixture
def bus() -> Iterator[NatsOutputConfig]:
    """A config with a stream and a subject of its own; the stream is deleted afterwards."""
    if not _nats_up():
        pytest.skip("no NATS server at 127.0.0.1:4222")
    tag = uuid.uuid4().hex[:12]
    config = NatsOutputConfig(name="bus", url=NATS_URL, subject=f"rwtest.{tag}", stream=f"RWTEST_{tag}",
                              timeout_seconds=5)
    yield config
    async def delete(jsm: Any) -> None:
        try:
            await jsm.delete_stream(config.stream)
        except nats.js.errors.NotFoundError:
            pass
    js_call(NATS_URL, delete)


def test_subject_token_replaces_what_a_subject_cannot_hold() -> None:
    assert subject_token("churn") == "churn"
    assert subject_token("fraud.v2 eu*>") == "fraud_v2_eu__"
    assert subject_token("tab\there\x07bell") == "tab_here_bell"
    assert subject_token("modèle-été_1") == "modèle-été_1"


def test_publish_creates_the_stream_and_ids_match(bus: NatsOutputConfig) -> None:
    output = NatsOutput(bus)
    try:
        event = moved()
        assert output.check() is None
        assert output.send(event).outcome == "delivered"
        info = stream_info(NATS_URL, bus.stream)
        assert info.config.subjects == [f"{bus.subject}.>"]
        assert info.state.messages == 1
        msg = stored(NATS_URL, bus.stream, 1)
        assert msg.subject == f"{bus.subject}.alias.moved.churn"
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == msg.headers["ce-id"] == event.id
        assert msg.headers["ce-specversion"] == "1.0"
        assert msg.headers["ce-type"] == "io.registry-watcher.alias.moved"
        assert msg.headers["ce-subject"] == "churn"
        assert msg.headers["content-type"] == "application/json"
        assert msg.data is not None
        assert json.loads(msg.data)["model_uri"] == "models:/churn/7"
    finally:
        output.close()


def test_duplicate_dropped_and_replay_stored(bus: NatsOutputConfig) -> None:
    output = NatsOutput(bus)
    try:
        event = moved()
        assert output.send(event).outcome == "delivered"
        assert output.send(event).outcome == "delivered"  # a retry whose first ack was lost
        assert stream_info(NATS_URL, bus.stream).state.messages == 1
        replay = OutgoingEvent(**{**event.__dict__, "replay": 1})
        assert output.send(replay).outcome == "delivered"
        assert output.send(OutgoingEvent(**{**event.__dict__, "replay": 2})).outcome == "delivered"
        assert stream_info(NATS_URL, bus.stream).state.messages == 3
        again = stored(NATS_URL, bus.stream, 2).headers or {}
        assert again["Nats-Msg-Id"] == f"{event.id}.replay.1"
        assert again["ce-id"] == event.id
    finally:
        output.close()


def test_model_name_is_sanitised_in_the_subject_only(bus: NatsOutputConfig) -> None:
    output = NatsOutput(bus)
    try:
        event = moved(model="fraud.v2 eu>")
        assert event_subject(bus.subject, event) == f"{bus.subject}.alias.moved.fraud_v2_eu_"
        assert output.send(event).outcome == "delivered"
        msg = stored(NATS_URL, bus.stream, 1)
        assert msg.subject == f"{bus.subject}.alias.moved.fraud_v2_eu_"
        assert json.loads(msg.data or b"{}")["model"] == "fraud.v2 eu>"
        assert unquote((msg.headers or {})["ce-subject"]) == "fraud.v2 eu>"  # percent-encoded, as in HTTP
    finally:
        output.close()


def test_unreachable_server_is_a_retry_and_check_fails() -> None:
    port = free_port()
    config = NatsOutputConfig(name="down", url=f"nats://user:s3cr3tpass@127.0.0.1:{port}", subject="rwtest.down",
                              stream="RWTEST_DOWN", timeout_seconds=1)
    output = NatsOutput(config)
    try:
        result = output.send(moved())
        assert result.outcome == "retry"
        assert result.error
        assert "s3cr3tpass" not in result.error
        problem = output.check()
        assert problem
        assert "s3cr3tpass" not in problem
    finally:
        output.close()


def _start_nats(port: int, store: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1", "-p", str(port),
                               "-js", "-sd", str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not _nats_up(port=port):
        assert server.poll() is None, "nats-server exited"
        assert time.monotonic() < deadline, "nats-server did not listen"
        time.sleep(0.05)
    return server


@pytest.mark.skipif(shutil.which("nats-server") is None, reason="no nats-server binary")
def test_publish_through_a_server_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    config = NatsOutputConfig(name="bus", url=url, subject="rwtest.restart", stream="RWTEST_RESTART",
                              timeout_seconds=1)
    server = _start_nats(port, tmp_path / "js")
    output = NatsOutput(config)
    try:
        assert output.send(moved(version="1")).outcome == "delivered"
        server.terminate()
        server.wait(10)
        assert output.send(moved(version="2")).outcome == "retry"  # no ack: the delivery loop retries
        server = _start_nats(port, tmp_path / "js")
        deadline = time.monotonic() + 30
        while (result := output.send(moved(version="2"))).outcome != "delivered":
            assert time.monotonic() < deadline, result.error
            time.sleep(0.2)
        assert output.send(moved(version="1")).outcome == "delivered"  # a late retry of an acked event
        info = stream_info(url, config.stream)
        assert info.state.messages == 2
        ids = [(stored(url, config.stream, seq).headers or {})["Nats-Msg-Id"] for seq in (1, 2)]
        assert ids == [moved(version="1").id, moved(version="2").id]
    finally:
        output.close()
        server.terminate()
        server.wait(10)


@pytest.mark.timeout(300)
def test_daemon_puts_a_staging_move_on_the_stream(bus: NatsOutputConfig, sqlite_server: str, tmp_path: Path) -> None:
    """Acceptance: the daemon's staging move is on the stream, ``Nats-Msg-Id`` = ``ce-id``."""
    from daemon_proc import Daemon
    from helpers import train

    suffix = uuid.uuid4().hex[:8]
    experiment, model = f"nats_e2e_{suffix}", f"nats e2e.{suffix}"  # a name the subject must sanitise
    config = tmp_path / "watcher.yaml"
    config.write_text(
        f"tracking_uri: {sqlite_server}\npoll_interval_seconds: 1\nlog: {{level: DEBUG}}\n"
        f"watches:\n  - experiment: {experiment}\n    model_name: '{model}'\n"
        "    gates: [{metric: recall, min: 0.0}]\n"
        f"events:\n  source: registry-watcher/test\n  outbox_path: {tmp_path / 'outbox.sqlite'}\n"
        f"  outputs:\n    - {{name: bus, type: nats, url: '{NATS_URL}', subject: {bus.subject}, stream: {bus.stream}}}\n")
    mlflow.set_tracking_uri(sqlite_server)
    mlflow.set_experiment(experiment)
    daemon = Daemon(config)
    try:
        daemon.wait_for("poll_completed", 120)  # the output's start is recorded: later facts are owed to it
        run_id = train(experiment, rows=200, n_estimators=2)
        daemon.wait_for("staging_alias_moved", 90, where=lambda e: e.get("run_id") == run_id)
        subject = f"{bus.subject}.alias.moved.{subject_token(model)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                msg = js_call(NATS_URL, lambda jsm: jsm.get_last_msg(bus.stream, subject))
                break
            except nats.js.errors.NotFoundError:  # the stream or the message: not yet
                assert time.monotonic() < deadline, f"nothing on {subject}"
                time.sleep(0.2)
        headers = msg.headers or {}
        assert headers["Nats-Msg-Id"] == headers["ce-id"]
        assert headers["ce-type"] == "io.registry-watcher.alias.moved"
        assert headers["ce-source"] == "registry-watcher/test"
        assert unquote(headers["ce-subject"]) == model
        data = json.loads(msg.data)
        assert data["model"] == model
        assert data["alias"] == "staging"
        assert data["model_uri"] == f"models:/{model}/{data['version']}"
    finally:
        daemon.stop()
