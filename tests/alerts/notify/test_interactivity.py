"""The Slack button endpoint: every malformed, unsigned, stale, forged or replayed request gets
its exact status, outcome and reason; any JSON or any request never raises nor gets a 5xx
(property tests); the HTTP limits hold on a real server in this process (no Redis: a fake)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from slack_sdk.signature import SignatureVerifier

from alerts.incidents.oncall import Interactivity as InteractivityConfig
from alerts.incidents.store import ActionRequest
from alerts.notify.interactivity import (
    CLOCK_MARGIN,
    STUB_SIGNING_SECRET,
    Answer,
    ButtonServer,
    Interactivity,
    MalformedClick,
    parse_click,
    read_click,
    replay_key,
    serve_interactivity,
)
from alerts.notify.metrics import INTERACTION_OUTCOMES
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.config import ConfigError
from tests.conftest import trickle, write_config

NOW = 1_800_000_000.0
TS = int(NOW)
SNOOZES = [1800, 7200]
RESPONDER = "U0SOCIAL1"
BRANDS = [{"id": "acme", "name": "Acme Coffee", "platforms": ["x"]}]
LIMITS = {"request_timeout": 2, "max_connections": 4}


class FakeRedis:
    """The two calls the endpoint makes, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, int | None]] = {}
        self.streams: dict[str, list[dict[str, Any]]] = {}

    def set(self, name: str, value: Any, nx: bool = False, ex: int | None = None) -> bool | None:
        if nx and name in self.values:
            return None
        self.values[name] = (str(value), ex)
        return True

    def xadd(self, name: str, fields: dict[str, Any]) -> str:
        self.streams.setdefault(name, []).append(fields)
        return f"{len(self.streams[name])}-0"


class DownRedis:
    """A Redis that does not answer."""

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def xadd(self, *args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    incidents: dict[str, Any] = {
        "responders": [RESPONDER],
        "snooze_options": ["30m", "2h"],
        "interactivity": LIMITS,
    }
    folder = write_config(
        tmp_path_factory.mktemp("config"), "unit", brands=BRANDS, alerts={"incidents": incidents}
    )
    return load_settings(folder)


@pytest.fixture
def fake() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def logic(config: Settings, fake: FakeRedis) -> Interactivity:
    return Interactivity(config, fake, STUB_SIGNING_SECRET)  # type: ignore[arg-type]


def sign(body: bytes, timestamp: int | str = TS) -> dict[str, str]:
    """Slack's headers for ``body`` (signed over the exact bytes, as Slack does)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(STUB_SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": f"v0={digest}"}


def click(**changes: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends for the Acknowledge button, with ``changes``."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": RESPONDER, "username": "jo"},
        "channel": {"id": "C0CRISIS"},
        "container": {"message_ts": "1.2"},
        "actions": [{"action_id": "ack", "value": "acme-1", "type": "button"}],
    }
    payload.update(changes)
    return payload


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def counts() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value(
            "socialpulse_slack_interactions_total", {"outcome": outcome}
        )
        or 0.0
        for outcome in INTERACTION_OUTCOMES
    }


def answer_counted(logic: Interactivity, body: bytes, headers: dict[str, str]) -> Answer:
    """The answer, after checking it was counted once under its own outcome."""
    before = counts()
    answer = logic.handle(body, headers, now=NOW)
    after = counts()
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        answer.outcome: 1.0
    }
    return answer


def test_our_signature_helper_is_slack_sdks() -> None:
    body = form(click())
    expected = SignatureVerifier(STUB_SIGNING_SECRET).generate_signature(
        timestamp=str(TS), body=body
    )
    assert sign(body)["x-slack-signature"] == expected


def test_a_responders_click_is_queued_once(logic: Interactivity, fake: FakeRedis) -> None:
    body = form(click())
    assert answer_counted(logic, body, sign(body)) == Answer(200, "accepted")
    [queued] = fake.streams["tunit:{acme}:incident-actions"]
    assert json.loads(queued["action"]) == {
        "incident": "acme-1",
        "action": "ack",
        "who": RESPONDER,
        "why": "from Slack",
        "snooze_for": None,
        "verdict": "",
        "reason": "",
    }
    # The same request again (a replay within the 5 minutes): refused, nothing more queued.
    assert answer_counted(logic, body, sign(body)) == Answer(
        401, "replayed", "this request was received before; nothing changed"
    )
    assert len(fake.streams["tunit:{acme}:incident-actions"]) == 1


def test_the_signature_is_kept_until_its_timestamp_leaves_the_window(
    logic: Interactivity, fake: FakeRedis
) -> None:
    body = form(click())
    headers = sign(body, TS - 100)  # sent 100 s ago: 200 s of the window left
    assert logic.handle(body, headers, now=NOW).outcome == "accepted"
    key = replay_key("tunit", headers["x-slack-signature"])
    assert key == f"tunit:slack-signature:{headers['x-slack-signature'][3:]}"
    assert fake.values == {key: (str(TS - 100), 200 + 1 + CLOCK_MARGIN)}


def test_snooze_and_resolve_buttons(logic: Interactivity, fake: FakeRedis) -> None:
    for action_id in ("snooze_7200", "resolve"):
        body = form(click(actions=[{"action_id": action_id, "value": "acme-1"}]))
        assert logic.handle(body, sign(body), now=NOW) == Answer(200, "accepted")
    queued = [json.loads(f["action"]) for f in fake.streams["tunit:{acme}:incident-actions"]]
    assert [(q["action"], q["snooze_for"]) for q in queued] == [("snooze", 7200), ("resolve", None)]


def test_someone_else_gets_an_ephemeral_refusal(logic: Interactivity, fake: FakeRedis) -> None:
    body = form(click(user={"id": "U0INTERN"}))
    assert answer_counted(logic, body, sign(body)) == Answer(200, "not_responder")
    [notice] = fake.streams["tunit:{acme}:outbox"]
    item = json.loads(notice["item"])
    assert (item["kind"], item["channel"], item["user"]) == ("ephemeral", "C0CRISIS", "U0INTERN")
    assert "tunit:{acme}:incident-actions" not in fake.streams
    # Without a channel in the payload, to the configured one.
    body = form(click(user={"id": "U0INTERN"}, channel={}))
    logic.handle(body, sign(body), now=NOW)
    assert json.loads(fake.streams["tunit:{acme}:outbox"][1]["item"])["channel"] == "#test-unit"


def test_buttons_that_are_not_ours_are_ignored(logic: Interactivity, fake: FakeRedis) -> None:
    for payload in (
        click(actions=[{"action_id": "board", "type": "button", "url": "http://g"}]),
        click(actions=[{"action_id": "snooze_60", "value": "acme-1"}]),  # not offered (now)
        {"type": "view_submission", "view": {}},
    ):
        body = form(payload)
        assert answer_counted(logic, body, sign(body)) == Answer(200, "ignored")
    assert fake.streams == {}


SIG = "v0=" + "0" * 64
UNSIGNED = Answer(401, "unsigned", "X-Slack-Request-Timestamp and X-Slack-Signature are required")
BAD_TIME = Answer(401, "forged", "X-Slack-Request-Timestamp is not a unix time")
BAD_SIG = Answer(401, "forged", "X-Slack-Signature is not v0= and 64 hex digits")


def slack_headers(timestamp: str, signature: str) -> dict[str, str]:
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}


HEADER_CASES = {
    "no headers": ({}, UNSIGNED),
    "no signature": ({"x-slack-request-timestamp": str(TS)}, UNSIGNED),
    "empty signature": (slack_headers(str(TS), ""), UNSIGNED),
    "garbage timestamp": (slack_headers("abc", SIG), BAD_TIME),
    "non-ASCII digits": (slack_headers("١٨٠٠٠٠٠٠٠٠", SIG), BAD_TIME),
    "negative timestamp": (slack_headers("-5", SIG), BAD_TIME),
    "fractional timestamp": (slack_headers(f"{TS}.5", SIG), BAD_TIME),
    "huge timestamp": (slack_headers("9" * 40, SIG), BAD_TIME),
    "garbage signature": (slack_headers(str(TS), "abc"), BAD_SIG),
    # As h11 and Starlette hand over header bytes 0xe9...: Latin-1 characters.
    "non-ASCII signature": (slack_headers(str(TS), "v0=" + "é" * 64), BAD_SIG),
    "upper-case hex": (slack_headers(str(TS), "v0=" + "A" * 64), BAD_SIG),
    "wrong signature": (
        slack_headers(str(TS), SIG),
        Answer(401, "forged", "X-Slack-Signature does not match the body"),
    ),
}


@pytest.mark.parametrize(("headers", "answer"), HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_unsigned_and_forged_requests_change_nothing(
    logic: Interactivity, fake: FakeRedis, headers: dict[str, str], answer: Answer
) -> None:
    assert answer_counted(logic, form(click()), headers) == answer
    assert (fake.values, fake.streams) == ({}, {})


@pytest.mark.parametrize("offset", [-301, 301, 3600, -86400], ids=str)
def test_a_timestamp_over_5_minutes_away_either_way_is_stale(
    logic: Interactivity, fake: FakeRedis, offset: int
) -> None:
    body = form(click())
    assert answer_counted(logic, body, sign(body, TS + offset)) == Answer(
        401,
        "stale",
        "X-Slack-Request-Timestamp is more than 5 minutes from now (an old request, or a "
        "clock that is off)",
    )
    assert (fake.values, fake.streams) == ({}, {})


def nested(depth: int) -> bytes:
    return b"payload=" + quote("[" * depth).encode()


NO_PAYLOAD = "the form has 0 payload fields, not one (Slack sends payload=<JSON>)"
NOT_JSON = "payload is not JSON (Expecting value at character 0)"
BAD_USER = "payload.user is not an object with a Slack user id"
BAD_CHANNEL = "payload.channel is not an object with a string id"
BAD_ACTIONS = "payload.actions is not a non-empty list"
BAD_ACTION_ID = "payload.actions[0].action_id is missing or not a string"
NOT_AN_ID = "not an incident id (<brand>-<number>)"
NO_USER = {k: v for k, v in click().items() if k != "user"}


def actions(*items: Any) -> bytes:
    return form(click(actions=list(items)))


BODY_CASES = {
    "form without payload": (b"foo=bar", NO_PAYLOAD),
    "empty body": (b"", NO_PAYLOAD),
    "two payloads": (
        b"payload=1&payload=2",
        "the form has 2 payload fields, not one (Slack sends payload=<JSON>)",
    ),
    "many fields": (
        b"&".join([b"a=1"] * 11),
        "the form has more than 10 fields (Slack sends one: payload)",
    ),
    "payload not JSON": (b"payload=nope", NOT_JSON),
    "payload empty": (b"payload=", NOT_JSON),
    "huge number": (b"payload=" + b"1" * 5000, "payload has a number too long to read"),
    "nested JSON": (nested(30000), "payload is JSON nested too deeply"),
    "non-UTF-8 body": (b"payload=\xff\xfe", "the body is not UTF-8"),
    "non-UTF-8 escapes": (b"payload=%FF%FE", "the form's %-escapes are not UTF-8"),
    "JSON list": (form([click()]), "payload is a JSON list, not an object"),
    "JSON number": (form(5), "payload is a JSON number, not an object"),
    "JSON string": (form("block_actions"), "payload is a JSON string, not an object"),
    "JSON null": (form(None), "payload is a JSON null, not an object"),
    "JSON bool": (form(True), "payload is a JSON bool, not an object"),
    "no type": (form({"actions": []}), "payload.type is missing or not a string"),
    "type a list": (form(click(type=["block_actions"])), "payload.type is missing or not a string"),
    "actions: 5": (form(click(actions=5)), BAD_ACTIONS),
    "actions missing": (form({"type": "block_actions", "user": {"id": "U1"}}), BAD_ACTIONS),
    "actions empty": (actions(), BAD_ACTIONS),
    "actions of numbers": (actions(5), "payload.actions[0] is not an object"),
    "second action a string": (
        actions({"action_id": "ack", "value": "acme-1"}, "x"),
        "payload.actions[1] is not an object",
    ),
    "user a string": (form(click(user="U0SOCIAL1")), BAD_USER),
    "user missing": (form(NO_USER), BAD_USER),
    "user id a number": (form(click(user={"id": 7})), BAD_USER),
    "user id mention syntax": (form(click(user={"id": "<!channel>"})), BAD_USER),
    "channel a string": (form(click(channel="C0CRISIS")), BAD_CHANNEL),
    "channel id a number": (form(click(channel={"id": 5})), BAD_CHANNEL),
    "action_id a number": (actions({"action_id": 5, "value": "acme-1"}), BAD_ACTION_ID),
    "action_id missing": (actions({"value": "acme-1"}), BAD_ACTION_ID),
    "value an object": (
        actions({"action_id": "ack", "value": {"id": "acme-1"}}),
        "payload.actions[0].value is not a string",
    ),
    "value missing": (
        actions({"action_id": "ack"}),
        f"payload.actions[0].value is missing, {NOT_AN_ID}",
    ),
    "value not an incident": (
        actions({"action_id": "resolve", "value": "acme"}),
        f"payload.actions[0].value is 'acme', {NOT_AN_ID}",
    ),
    "value of another brand": (
        actions({"action_id": "ack", "value": "globex-1"}),
        "incident globex-1: no brand 'globex'",
    ),
}


@pytest.mark.parametrize(("body", "reason"), BODY_CASES.values(), ids=BODY_CASES.keys())
def test_every_malformed_signed_payload_gets_400_with_the_reason(
    logic: Interactivity, fake: FakeRedis, body: bytes, reason: str
) -> None:
    assert answer_counted(logic, body, sign(body)) == Answer(400, "bad_request", reason)
    assert fake.streams == {}


def test_a_big_but_allowed_payload_is_fine(logic: Interactivity) -> None:
    body = form(click(state={"values": {"note": "x" * 40_000}}))
    assert 40_000 < len(body) < 65536
    assert logic.handle(body, sign(body), now=NOW) == Answer(200, "accepted")


def test_redis_down_is_503_and_counted(config: Settings) -> None:
    logic = Interactivity(config, DownRedis(), STUB_SIGNING_SECRET)  # type: ignore[arg-type]
    body = form(click())
    assert answer_counted(logic, body, sign(body)) == Answer(
        503, "unavailable", "Redis is unavailable; nothing was taken, retry"
    )


NO_LENGTH = Answer(411, "bad_request", "Content-Length is required (no Transfer-Encoding)")
NOT_A_LENGTH = Answer(400, "bad_request", "Content-Length is not a number of bytes")
TOO_LARGE = Answer(
    413, "too_large", "the body is over 65536 bytes (incidents.interactivity.max_body)"
)
LENGTH_CASES = {
    "missing": ({}, NO_LENGTH),
    "chunked": ({"transfer-encoding": "chunked"}, NO_LENGTH),
    "chunked beside a length": ({"content-length": "5", "transfer-encoding": "chunked"}, NO_LENGTH),
    "negative": ({"content-length": "-1"}, NOT_A_LENGTH),
    "not a number": ({"content-length": "abc"}, NOT_A_LENGTH),
    "over max_body": ({"content-length": "65537"}, TOO_LARGE),
    "5000 digits": ({"content-length": "0" + "9" * 5000}, TOO_LARGE),
}


@pytest.mark.parametrize(("headers", "answer"), LENGTH_CASES.values(), ids=LENGTH_CASES.keys())
def test_a_body_is_read_only_when_its_length_is_bounded(
    logic: Interactivity, headers: dict[str, str], answer: Answer
) -> None:
    before = counts()
    assert logic.refuse_length(headers) == answer
    assert counts()[answer.outcome] - before[answer.outcome] == 1
    assert logic.refuse_length({"content-length": "65536"}) is None
    assert logic.refuse_length({"content-length": "000012"}) is None


def test_config_limits_are_validated(config: Settings, tmp_path: Path) -> None:
    endpoint = config.alerts.incidents.interactivity
    assert (endpoint.request_timeout, endpoint.max_connections, endpoint.max_body) == (2, 4, 65536)
    assert InteractivityConfig().request_timeout == 10
    assert InteractivityConfig().max_connections == 64
    assert InteractivityConfig.model_validate({"request_timeout": "30s"}).request_timeout == 30
    problems = {
        "request_timeout": ("2m", "120 s is too long for a request to arrive; use 1s to 60s"),
        "max_connections": (0, "0 open connections: use 1 to 4096 (e.g. 64)"),
    }
    for key, (value, message) in problems.items():
        folder = write_config(
            tmp_path / key,
            "unit",
            brands=BRANDS,
            alerts={"incidents": {"interactivity": {key: value}}},
        )
        with pytest.raises(ConfigError) as raised:
            load_settings(folder)
        assert str(raised.value).endswith(f"incidents.interactivity.{key}: {message}")


# Any JSON value (the payloads strategy leans towards the shape of a click, so the deeper
# checks are reached too).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
action_ids = st.sampled_from(["ack", "resolve", "snooze_1800", "snooze_60", "snooze_x", "board"])
action_objects = st.fixed_dictionaries(
    {},
    optional={
        "action_id": action_ids | json_values,
        "value": st.sampled_from(["acme-1", "acme", "globex-2", ""]) | json_values,
        "type": st.just("button"),
    },
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("block_actions") | json_values,
        "user": st.fixed_dictionaries({"id": st.sampled_from([RESPONDER, "U0X"]) | json_values})
        | json_values,
        "channel": st.fixed_dictionaries({"id": st.text(max_size=8) | json_values}) | json_values,
        "actions": st.lists(action_objects | json_values, max_size=3) | json_values,
    },
)
# A real click with one or two of its parts (or its button's) replaced by anything.
near_clicks = st.dictionaries(
    st.sampled_from(["type", "user", "channel", "actions"]), shaped | json_values, max_size=2
).map(lambda parts: click(**parts))
near_buttons = action_objects.map(
    lambda button: click(actions=[{"action_id": "ack", "value": "acme-1", **button}])
)
payloads = json_values | shaped | near_clicks | near_buttons


@given(payloads)
def test_parse_click_takes_any_json(payload: Any) -> None:
    found = parse_click(payload, SNOOZES)
    event("a click" if found else "not a click")
    assert found is None or isinstance(found, ActionRequest)
    if found is not None:
        assert found.action in ("ack", "snooze", "resolve")
        assert found.incident.rsplit("-", 1)[1].isdigit()
    try:
        assert read_click(payload, SNOOZES) == found
    except MalformedClick as exc:
        assert found is None and str(exc).startswith("payload")


PROPERTY = hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(payload=payloads)
def test_any_signed_payload_is_answered_without_a_5xx(config: Settings, payload: Any) -> None:
    logic = Interactivity(config, FakeRedis(), STUB_SIGNING_SECRET)  # type: ignore[arg-type]
    body = form(payload)
    answer = logic.handle(body, sign(body), now=NOW)
    event(answer.outcome)  # --hypothesis-show-statistics: how often each is reached
    assert answer.status in (200, 400)
    assert answer.outcome in ("accepted", "ignored", "not_responder", "bad_request")
    assert (answer.status == 400) == bool(answer.reason)


header_values = st.text(max_size=80) | st.sampled_from([str(TS), SIG, "v0=", "0", " 1"])


@PROPERTY
@given(
    body=st.binary(max_size=300) | payloads.map(form),
    timestamp=st.none() | header_values,
    signature=st.none() | header_values,
    signed=st.booleans(),
)
def test_any_request_is_answered_without_a_5xx(
    config: Settings,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signed: bool,
) -> None:
    headers = sign(body) if signed else {}
    if timestamp is not None:
        headers["x-slack-request-timestamp"] = timestamp
    if signature is not None:
        headers["x-slack-signature"] = signature
    logic = Interactivity(config, FakeRedis(), STUB_SIGNING_SECRET)  # type: ignore[arg-type]
    assert logic.handle(body, headers, now=NOW).status in (200, 400, 401)
    down = Interactivity(config, DownRedis(), STUB_SIGNING_SECRET)  # type: ignore[arg-type]
    assert down.handle(body, headers, now=NOW).status in (200, 400, 401, 503)


# --- over HTTP, on a real server (uvicorn on h11 with the guarded protocol) ---


def start(settings: Settings, client: Any) -> ButtonServer:
    server = serve_interactivity(settings, client)
    assert server is not None
    return server


@pytest.fixture(scope="module")
def endpoint(config: Settings) -> Iterator[tuple[InteractivityConfig, FakeRedis]]:
    client = FakeRedis()
    server = start(config, client)
    yield config.alerts.incidents.interactivity, client
    server.stop()


def post(
    config: InteractivityConfig, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """POST through http.client (which sets Content-Length): status, headers, body."""
    connection = http.client.HTTPConnection(config.host, config.port, timeout=5)
    try:
        connection.request("POST", config.path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def raw(config: InteractivityConfig, head: bytes, *, wait: float = 5) -> tuple[int, str, float]:
    """Send raw bytes; the status and body of the answer, and how long it took."""
    started = time.monotonic()
    with socket.create_connection((config.host, config.port), timeout=wait) as sock:
        sock.sendall(head)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read().decode(), time.monotonic() - started


def head(config: InteractivityConfig, *lines: str | bytes) -> bytes:
    """A POST's head with these header lines."""
    start = [f"POST {config.path} HTTP/1.1", "Host: t", *lines]
    return b"\r\n".join(v if isinstance(v, bytes) else v.encode() for v in start) + b"\r\n\r\n"


def test_over_http_a_signed_click_then_its_replay(
    endpoint: tuple[InteractivityConfig, FakeRedis],
) -> None:
    config, client = endpoint
    body = form(click(actions=[{"action_id": "resolve", "value": "acme-7"}]))
    headers = sign(body, int(time.time()))
    assert post(config, body, headers)[0::2] == (200, "")
    assert post(config, body, headers)[0::2] == (
        401,
        "this request was received before; nothing changed",
    )
    resolved = [
        json.loads(f["action"])["incident"] for f in client.streams["tunit:{acme}:incident-actions"]
    ]
    assert resolved.count("acme-7") == 1


H11_LENGTH = "Invalid HTTP request received. (bad Content-Length)"
LENGTH_OVER_HTTP = {
    "Content-Length: -1": (400, H11_LENGTH),
    "Content-Length: abc": (400, H11_LENGTH),
    "X-No-Length: 1": (NO_LENGTH.status, NO_LENGTH.reason),
    "Transfer-Encoding: chunked": (NO_LENGTH.status, NO_LENGTH.reason),
    "Content-Length: 52428800": (TOO_LARGE.status, TOO_LARGE.reason),
}


@pytest.mark.parametrize(
    ("line", "status", "reason"), [(k, *v) for k, v in LENGTH_OVER_HTTP.items()], ids=str
)
def test_over_http_an_unbounded_body_is_refused_before_reading(
    endpoint: tuple[InteractivityConfig, FakeRedis], line: str, status: int, reason: str
) -> None:
    config, _ = endpoint
    answered, text, took = raw(config, head(config, line))  # the body is never sent
    assert (answered, text) == (status, reason)
    assert took < 1.0


def test_over_http_non_ascii_and_non_utf8(endpoint: tuple[InteractivityConfig, FakeRedis]) -> None:
    config, _ = endpoint
    body = b"payload=\xff"
    ts = str(int(time.time()))
    signature = sign(body, ts)["x-slack-signature"]
    lines = (f"X-Slack-Request-Timestamp: {ts}", f"X-Slack-Signature: {signature}")
    request = head(config, *lines, f"Content-Length: {len(body)}") + body
    assert raw(config, request)[:2] == (400, "the body is not UTF-8")
    signature_line = b"X-Slack-Signature: v0=\xe9\xff"
    non_ascii = head(
        config, f"X-Slack-Request-Timestamp: {ts}", signature_line, "Content-Length: 2"
    )
    non_ascii += b"ab"
    assert raw(config, non_ascii)[:2] == (401, "X-Slack-Signature is not v0= and 64 hex digits")


def test_over_http_other_paths_and_methods(
    endpoint: tuple[InteractivityConfig, FakeRedis],
) -> None:
    config, _ = endpoint
    assert raw(config, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")[:2] == (404, "Not Found")
    get = f"GET {config.path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    assert raw(config, get)[:2] == (405, "Method Not Allowed")


def test_over_http_a_slow_body_gets_408(endpoint: tuple[InteractivityConfig, FakeRedis]) -> None:
    config, _ = endpoint
    with socket.create_connection((config.host, config.port), timeout=10) as sock:
        sock.sendall(head(config, "Content-Length: 100"))
        answered = trickle(sock, 10)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.read().decode()) == (
            408,
            "the request was not received within 2 s",
        )
    assert 1.9 <= answered < 2.5


def test_over_http_connections_beyond_the_bound_get_503(
    endpoint: tuple[InteractivityConfig, FakeRedis],
) -> None:
    config, _ = endpoint
    idle = [socket.create_connection((config.host, config.port)) for _ in range(4)]
    try:
        time.sleep(0.1)
        with socket.create_connection((config.host, config.port), timeout=2) as extra:
            response = http.client.HTTPResponse(extra)
            response.begin()
            assert (response.status, response.getheader("retry-after")) == (503, "1")
            assert response.read().decode() == "more than 4 open connections; retry shortly"
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert post(config, b"", {})[0] == 401  # answering again


def test_over_http_redis_down_is_503_with_retry_after(tmp_path: Path) -> None:
    folder = write_config(tmp_path, "unit", brands=BRANDS)
    settings = load_settings(folder)
    server = start(settings, DownRedis())
    try:
        endpoint = settings.alerts.incidents.interactivity
        body = form(click())
        status, headers, text = post(endpoint, body, sign(body, int(time.time())))
        assert (status, headers.get("retry-after"), text) == (
            503,
            "1",
            "Redis is unavailable; nothing was taken, retry",
        )
    finally:
        server.stop()


def test_stopping_takes_at_most_its_timeout(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "unit", brands=BRANDS))
    server = start(settings, FakeRedis())
    endpoint = settings.alerts.incidents.interactivity
    busy = socket.create_connection((endpoint.host, endpoint.port))
    busy.sendall(head(endpoint, "Content-Length: 10") + b"x")  # a request in progress
    try:
        time.sleep(0.1)
        started = time.monotonic()
        server.stop(2.0)
        assert time.monotonic() - started <= 2.2
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((endpoint.host, endpoint.port), timeout=1).close()
        server.stop(2.0)  # a second stop is harmless
    finally:
        busy.close()


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(
                ["X-Slack-Signature", "X-Slack-Request-Timestamp", "Content-Type", "X-Other"]
            ),
            st.binary(max_size=40).filter(lambda v: b"\r" not in v and b"\n" not in v),
        ),
        max_size=4,
    ),
    body=st.binary(max_size=200) | payloads.map(form),
    length=st.sampled_from(["exact", "none", "short", "garbage"]),
)
def test_over_http_any_request_is_answered_without_a_5xx(
    endpoint: tuple[InteractivityConfig, FakeRedis],
    lines: list[tuple[str, bytes]],
    body: bytes,
    length: str,
) -> None:
    config, _ = endpoint
    # (A declared length longer than the body would wait for the 408: tested above.)
    declared = {
        "exact": f"{len(body)}",
        "none": None,
        "short": f"{max(len(body) - 1, 0)}",
        "garbage": "1x",
    }[length]
    request = [f"POST {config.path} HTTP/1.1".encode(), b"Host: t", b"Connection: close"]
    request += [name.encode() + b": " + value for name, value in lines]
    if declared is not None:
        request.append(f"Content-Length: {declared}".encode())
    with socket.create_connection((config.host, config.port), timeout=5) as sock:
        sock.sendall(b"\r\n".join([*request, b"", b""]) + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 "), reply  # answered, never dropped
    status = int(reply[9:12])
    assert status in (200, 400, 401, 411), reply
