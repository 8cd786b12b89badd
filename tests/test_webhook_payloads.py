"""The webhook receiver never answers 5xx: a pydantic schema for the payload, a property test over
arbitrary bodies and headers (signed and unsigned, in-process and over HTTP), 401 without any
signature header, the replay cache kept for the tolerance window, and one info line per tick that
deliveries triggered (issue 18, point 4)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import issue_yaml
from daemon_proc import LiveClient
from helpers import captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import load_config
from watcher.service import webhooks
from watcher.service.health import Health
from watcher.service.http import build_app
from watcher.service.poller import Poller

SECRET = "whsec-prop-" + uuid.uuid4().hex
MODEL = "m_prop"
NOW = 1_800_000_000.0
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _config(tmp_path: Path):
    text = issue_yaml("http://127.0.0.1:9", "exp_prop", MODEL)
    text += f"http:\n  host: 127.0.0.1\n  port: 0\n  webhook_secret: {SECRET}\n"
    path = tmp_path / "watcher.yaml"
    path.write_text(text)
    return load_config(path)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):
    return _config(tmp_path_factory.mktemp("prop"))


def _signed(body: bytes, delivery_id: str | None = None, stamp: float = NOW) -> dict[str, str]:
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(stamp))
    return {webhooks.DELIVERY_ID_HEADER: delivery_id, webhooks.TIMESTAMP_HEADER: ts,
            webhooks.SIGNATURE_HEADER: webhooks.sign(SECRET, delivery_id, ts, body)}


def _body(**over: object) -> bytes:
    payload: dict[str, object] = {"entity": "model_version_alias", "action": "created",
                                  "timestamp": "2026-01-01T00:00:00+00:00",
                                  "data": {"name": MODEL, "alias": "production", "version": "1"}}
    payload.update(over)
    return json.dumps(payload).encode()


json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=15)
field_values = json_values | st.sampled_from([MODEL, "production", "staging", "1", "model_version_alias"])
payloads = st.fixed_dictionaries({}, optional={
    "entity": field_values, "action": field_values, "timestamp": field_values,
    "data": st.fixed_dictionaries({}, optional={"name": field_values, "alias": field_values,
                                                "version": field_values}) | json_values,
})
bodies = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                   payloads.map(lambda v: json.dumps(v).encode()))
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30)
headers = st.fixed_dictionaries({}, optional={webhooks.DELIVERY_ID_HEADER: header_values,
                                              webhooks.TIMESTAMP_HEADER: header_values | st.just(str(int(NOW))),
                                              webhooks.SIGNATURE_HEADER: header_values})


@PROPERTY
@given(body=bodies, extra=headers, signed=st.booleans())
def test_no_body_signed_or_unsigned_gets_a_5xx_or_a_tick_unless_valid(config, body: bytes, extra: dict[str, str],
                                                                      signed: bool):
    ticks: list[str] = []
    receiver = webhooks.Receiver(config, ticks.append, clock=lambda: NOW)
    outcome = receiver.handle(_signed(body) if signed else extra, body)
    assert outcome.status in (200, 400, 401)
    valid = webhooks.parse_payload(body) is not None
    if not signed or not valid:
        assert outcome.status in (400, 401) and ticks == []  # a refusal changes nothing
    if signed and valid:
        assert outcome.status == 200


def test_a_list_as_data_name_is_400_not_500(config):
    ticks: list[str] = []
    receiver = webhooks.Receiver(config, ticks.append, clock=lambda: NOW)
    for bad in (_body(data={"name": [MODEL], "alias": "production"}), _body(data={"name": MODEL, "alias": {}}),
                _body(data={"name": MODEL, "alias": "production", "version": 1}), _body(data=[1]),
                _body(entity=None), b'{"entity": "model_version_alias"}', b"[]", b"\xff"):
        assert receiver.handle(_signed(bad), bad).status == 400, bad
    assert ticks == []
    good = _body()
    assert receiver.handle(_signed(good), good).status == 200 and len(ticks) == 1


def test_no_signature_headers_is_401_and_a_malformed_timestamp_400(config):
    receiver = webhooks.Receiver(config, lambda _: None, clock=lambda: NOW)
    body = _body()
    assert receiver.handle({}, body).status == 401
    headers = _signed(body)
    assert receiver.handle({**headers, webhooks.TIMESTAMP_HEADER: "soon"}, body).status == 400
    assert receiver.handle({**headers, webhooks.TIMESTAMP_HEADER: "--5"}, body).status == 400
    del headers[webhooks.SIGNATURE_HEADER]
    assert receiver.handle(headers, body).status == 401


def test_replay_is_refused_for_the_whole_tolerance_window_whatever_came_between(config):
    now = [NOW]
    ticks: list[str] = []
    receiver = webhooks.Receiver(config, ticks.append, clock=lambda: now[0])
    body = _body()
    first = _signed(body, "delivery-0")
    assert receiver.handle(first, body).status == 200
    for i in range(5000):  # more than the old 4,096-id cache, within the window
        other = _body(data={"name": "not_watched", "alias": "production", "version": str(i)})
        assert receiver.handle(_signed(other), other).status == 200
    now[0] = NOW + config.http.webhook_tolerance_seconds - 1
    replay = receiver.handle(first, body)
    assert replay.status == 200 and replay.detail == "duplicate delivery"
    assert ticks == ["webhook:model_version_alias.created"]
    now[0] = NOW + config.http.webhook_tolerance_seconds + 1  # past the window: stale, never a tick
    assert receiver.handle(first, body).status == 400
    fresh = _body(data={"name": "not_watched"})
    assert receiver.handle(_signed(fresh, stamp=now[0]), fresh).status == 200
    assert len(receiver._seen) == 1  # expired ids were dropped: memory follows the window, not a count
    assert ticks == ["webhook:model_version_alias.created"]


@PROPERTY
@given(body=bodies, extra=headers, signed=st.booleans())
def test_the_http_route_never_answers_5xx(live, body: bytes, extra: dict[str, str], signed: bool):
    import time

    headers = _signed(body, stamp=time.time()) if signed else extra
    assert live.post("/webhooks/mlflow", body, headers).status_code in (200, 400, 401)


@pytest.fixture(scope="module")
def live(config):
    served = LiveClient(build_app(Health.for_config(config), config.http,
                                  webhooks.Receiver(config, lambda _: None)))
    yield served
    served.close()


def test_verified_deliveries_log_at_debug_and_one_info_line_per_tick(config):
    poller = Poller(None, config)  # type: ignore[arg-type] - no server: the tick fails, after its line
    receiver = webhooks.Receiver(config, poller.request_tick, clock=lambda: NOW)
    with captured() as logs:
        for _ in range(200):
            body = _body()
            assert receiver.handle(_signed(body), body).status == 200
        poller._poll_once()
        poller.backoff.retry_now()
        poller._poll_once()  # a tick no delivery asked for: no line
    received = [e for e in logs if e["event"] == "webhook_received"]
    assert len(received) == 200 and {e["log_level"] for e in received} == {"debug"}
    ticks = [e for e in logs if e["event"] == "webhook_tick"]
    assert len(ticks) == 1 and ticks[0]["deliveries"] == 200 and ticks[0]["log_level"] == "info"
