"""The Slack output against a local receiver (http.server): the line of each event, the default filter
(alias moves and rejected runs), the answers (2xx, 404/410 disable, 429/5xx retry) and the webhook
URL kept out of every error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from watcher.config.events import SlackOutputConfig
from watcher.events.model import OutgoingEvent, event_id, sequence_of
from watcher.events.outputs.slack import SlackOutput
from watcher.testing import free_port

UI = "http://mlflow.example:5000"
SECRET_PATH = "/services/T000/B000/XXXXsecretXXXX"


class Receiver(ThreadingHTTPServer):
    """Records each POST's JSON body; answers ``status`` (200 unless a test says otherwise)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[dict[str, Any]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SECRET_PATH}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append({"path": self.path, "body": json.loads(body),
                                  "content_type": self.headers["Content-Type"]})
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"ok" if self.server.status < 300 else b"no_service")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _event(short_type: str, data: dict[str, Any], model: str = "churn") -> OutgoingEvent:
    return OutgoingEvent(id=event_id(short_type, json.dumps(data, sort_keys=True)),
                         type=f"io.registry-watcher.{short_type}", source="registry-watcher/test", subject=model,
                         time=datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc),
                         sequence=sequence_of(1_796_292_000_000), model=model, data=data)


def moved(model: str = "churn") -> OutgoingEvent:
    return _event("alias.moved", {"model": model, "alias": "production", "version": "7", "previous_version": "6",
                                  "moved_by": "alice", "reason": "promote --to production",
                                  "model_uri": f"models:/{model}/7"}, model)


def rejected() -> OutgoingEvent:
    return _event("run.decided", {"run_id": "0123456789abcdef", "experiment_id": "4", "model": "churn",
                                  "decision": "rejected", "version": None,
                                  "reasons": ["accuracy 0.61 < 0.80", "no signature"],
                                  "gates": [{"name": "min_accuracy", "passed": False, "detail": "0.61 < 0.80"}]})


def registered() -> OutgoingEvent:
    return _event("run.decided", {"run_id": "fedcba9876543210", "experiment_id": "4", "model": "churn",
                                  "decision": "registered", "version": "8", "reasons": [], "gates": []})


def scored() -> OutgoingEvent:
    return _event("scoring.finished", {"model": "churn", "version": "7", "rows": 20000, "output": "s3://b/x.parquet",
                                       "duration_seconds": 3.25, "status": "succeeded"})


def slack(url: str, **kw: Any) -> SlackOutput:
    return SlackOutput(SlackOutputConfig(name="team-chat", url=url, timeout_seconds=2, **kw), UI)


def test_alias_move_line(receiver: Receiver) -> None:
    output = slack(receiver.url)
    assert output.send(moved()).outcome == "delivered"
    [post] = receiver.posts
    assert post["path"] == SECRET_PATH
    assert post["content_type"] == "application/json"
    text = post["body"]["text"]
    assert "\n" not in text
    assert f"<{UI}/#/models/churn/versions/7|churn v7>" in text
    assert "`@production`" in text
    assert "(was v6)" in text
    assert "by alice" in text
    assert "promote --to production" in text


def test_rejected_run_line(receiver: Receiver) -> None:
    output = slack(receiver.url)
    assert output.send(rejected()).outcome == "delivered"
    text = receiver.posts[0]["body"]["text"]
    assert f"<{UI}/#/experiments/4/runs/0123456789abcdef|run 01234567>" in text
    assert "rejected for *churn*" in text
    assert "accuracy 0.61 &lt; 0.80; no signature" in text  # Slack's escaping of < > &


def test_default_filter_sends_moves_and_rejections_only(receiver: Receiver) -> None:
    output = slack(receiver.url)
    assert [output.wants(e) for e in (moved(), rejected(), registered(), scored())] == [True, True, False, False]
    assert output.send(registered()).outcome == "delivered"  # not wanted: nothing posted
    assert output.send(scored()).outcome == "delivered"
    assert receiver.posts == []


def test_types_filter_adds_registered_runs_and_scoring(receiver: Receiver) -> None:
    output = slack(receiver.url, types=["run.decided", "scoring.finished"])
    assert [output.wants(e) for e in (moved(), rejected(), registered(), scored())] == [False, True, True, True]
    assert output.send(registered()).outcome == "delivered"
    assert output.send(scored()).outcome == "delivered"
    lines = [p["body"]["text"] for p in receiver.posts]
    assert f"<{UI}/#/models/churn/versions/8|churn v8>" in lines[0]
    assert "registered" in lines[0]
    assert "20000 rows" in lines[1]
    assert "3.2 s" in lines[1]


def test_names_are_escaped_and_links_encoded(receiver: Receiver) -> None:
    output = slack(receiver.url)
    assert output.send(moved(model="a<b>&c d")).outcome == "delivered"
    text = receiver.posts[0]["body"]["text"]
    assert f"<{UI}/#/models/a%3Cb%3E%26c%20d/versions/7|a&lt;b&gt;&amp;c d v7>" in text


@pytest.mark.parametrize(("status", "outcome"), [(404, "disabled"), (410, "disabled"), (403, "disabled"),
                                                  (429, "retry"), (500, "retry"), (503, "retry"), (400, "retry")])
def test_answers(receiver: Receiver, status: int, outcome: str) -> None:
    receiver.status = status
    result = slack(receiver.url).send(moved())
    assert result.outcome == outcome
    assert result.error
    assert str(status) in result.error
    assert "XXXXsecretXXXX" not in result.error


def test_unreachable_is_a_retry_without_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    output = slack(url)
    result = output.send(moved())
    assert result.outcome == "retry"
    assert result.error
    assert "XXXXsecretXXXX" not in result.error
    problem = output.check()
    assert problem
    assert "XXXXsecretXXXX" not in problem


def test_check_connects_without_posting(receiver: Receiver) -> None:
    assert slack(receiver.url).check() is None
    assert receiver.posts == []


def test_url_env_reads_the_webhook_from_the_environment_and_keeps_it_secret(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from watcher.config.events import EventsConfig
    from watcher.obs.redact import add_secrets, redact

    monkeypatch.setenv("TEAM_CHAT_WEBHOOK", receiver.url)
    config = SlackOutputConfig(name="team-chat", url_env="TEAM_CHAT_WEBHOOK", timeout_seconds=2)
    assert "XXXXsecretXXXX" not in repr(config) + config.model_dump_json()  # the config holds a name only
    events = EventsConfig(outputs=[config])
    assert events.secret_values() == [receiver.url]
    add_secrets(events.secret_values())  # as the daemon and the CLI do: logs never show it
    assert "XXXXsecretXXXX" not in redact(f"posting to {receiver.url}")
    output = SlackOutput(config, UI)
    assert output.check() is None and output.send(moved()).outcome == "delivered"
    assert receiver.posts[0]["path"] == SECRET_PATH
    monkeypatch.delenv("TEAM_CHAT_WEBHOOK")
    unset = SlackOutput(config, UI)
    assert "TEAM_CHAT_WEBHOOK" in (unset.check() or "") and unset.send(moved()).outcome == "retry"
    for both_or_neither in ({"url": receiver.url, "url_env": "X"}, {}):
        with pytest.raises(ValidationError, match="exactly one of url and url_env"):
            SlackOutputConfig(name="team-chat", **both_or_neither)
