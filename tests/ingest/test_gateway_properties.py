"""Property: no request a client can send makes the gateway answer 5xx, except 503 when Kafka
does not take the events (and /healthz's 503 while it is not connected). Arbitrary bodies
(JSON with NaN, huge numbers, lone surrogates, deep nesting, wrong types in every field the
mappings read; raw bytes), headers (any Latin-1 bytes, signatures right and wrong) and query
strings go to every route of the ASGI app, with a fake Kafka writer in each of its moods.
Whatever it writes must be JSON that orjson reads back and the event schemas accept."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import load_ingest
from ingest.json_body import parse_items
from ingest.kafka_writer import Busy, NotAcknowledged, envelopes
from ingest.mapping import apply_mapping
from ingest.meta import map_payload
from ingest.validation import Accepted, Rejected, validate_item
from tests.ingest.asgi_client import (
    IG_ACCOUNT,
    SETTINGS,
    TOKEN,
    VERIFY,
    FakeWriter,
    events_hook_signed,
    gateway_app,
    listening_hook_signed,
    mention,
    meta_signed,
    order,
    run,
)

# The failing examples of the deep cases are long: hypothesis' warning about it is no news.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

WRITERS = {
    "ok": FakeWriter(),
    "busy": FakeWriter(fail=Busy("20000 events already wait for Kafka")),
    "unacknowledged": FakeWriter(fail=NotAcknowledged("Kafka did not acknowledge within 15 s")),
    "not_connected": FakeWriter(connected=False, fail=NotAcknowledged("not connected")),
}
APPS = {mood: gateway_app(writer) for mood, writer in WRITERS.items()}
PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Raw:
    """JSON text to put in a document as is (NaN, a 5,000-digit number, a lone surrogate)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def encode(value: Any) -> str:
    """JSON text of ``value``, with Raw pieces and non-finite floats written as sent."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return "{" + ",".join(f"{encode(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate becomes its \\u escape


# What JSON carries and the gateway must read: every type, bounds on either side, odd text.
readable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 1e20, 1e12, -1, 0, 10**13, 2**63, 2**64 - 1]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.sampled_from(["é", "😍", "\x00", "2026-11-30T12:00:00Z", "2026-11-30T12:00:00+0000"]),
    st.sampled_from(["not-a-time", "", "  ", "comments", "feed", "comment", "add", "mention"]),
)
# What orjson refuses: NaN and Infinity, numbers beyond a double, lone surrogates.
unreadable_leaves = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.integers(min_value=310, max_value=6000).map(lambda n: Raw("9" * n)),
    st.sampled_from([Raw("1e999"), Raw("NaN"), Raw("-Infinity"), Raw("Infinity")]),
    st.sampled_from(["\ud800", "\udfff", "x\ud800y"]),
)
readable = st.recursive(
    readable_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
unreadable = st.recursive(
    unreadable_leaves, lambda inner: st.lists(st.one_of(inner, readable), max_size=3)
)
# Around orjson's limits (254 levels written, 1,024 read) and Python's recursion limit (1,000).
depths = st.one_of(
    st.sampled_from([253, 254, 255, 990, 1000, 1010, 1022, 1023, 1024]), st.integers(250, 1200)
)
deep = depths.map(lambda n: Raw("[" * n + "]" * n))
anything = st.one_of(readable, readable, readable, deep, unreadable)

EVENT_FIELDS = [
    "type", "id", "ts", "platform", "brand", "author", "text", "sentiment", "author_followers",
    "kind", "content_id", "user_id", "value", "campaign", "conversation_id", "reply_to",
    "from_brand", "needs_reply", "schema_version", "extra",
]  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A valid mention or order with some fields replaced by anything."""
    event: dict[str, Any] = draw(st.sampled_from([mention, order]))(draw(st.integers(0, 99)))
    for name in draw(st.lists(st.sampled_from(EVENT_FIELDS), max_size=3)):
        event[name] = draw(anything)
    return draw(st.one_of(st.just(event), anything)) if draw(st.integers(0, 9)) == 0 else event


V = ("entry", 0, "changes", 0, "value")  # a change's value
M = ("entry", 0, "messaging", 0)  # a message
META_PATHS = [
    ("entry",), ("object",), ("entry", 0), ("entry", 0, "id"), ("entry", 0, "time"),
    ("entry", 0, "changes"), ("entry", 0, "messaging"), ("entry", 0, "changes", 0),
    ("entry", 0, "changes", 0, "field"), V, (*V, "created_time"), (*V, "from"),
    (*V, "from", "id"), (*V, "from", "username"), (*V, "media"), (*V, "media", "id"),
    (*V, "text"), (*V, "id"), (*V, "item"), (*V, "verb"), (*V, "post_id"), (*V, "share_id"),
    (*V, "comment_id"), (*V, "media_id"), (*V, "message"), M, (*M, "sender"), (*M, "recipient"),
    (*M, "sender", "id"), (*M, "timestamp"), (*M, "message"), (*M, "message", "mid"),
    (*M, "message", "text"), (*M, "message", "is_echo"),
]  # fmt: skip


def meta_base(field: str, item: str) -> dict[str, Any]:
    value = {
        "id": "c1",
        "text": "hi",
        "message": "hello",
        "from": {"id": "9", "username": "mia"},
        "media": {"id": "m1"},
        "item": item,
        "verb": "add",
        "post_id": "p1",
        "comment_id": "k1",
        "created_time": int(time.time()),
    }
    return {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ACCOUNT,
                "time": int(time.time()),
                "changes": [{"field": field, "value": value}],
                "messaging": [
                    {
                        "sender": {"id": "555"},
                        "recipient": {"id": IG_ACCOUNT},
                        "timestamp": int(time.time() * 1000),
                        "message": {"mid": "m_1", "text": "help"},
                    }
                ],
            }
        ],
    }


@st.composite
def meta_payloads(draw: st.DrawFn) -> Any:
    """A Meta notification with some of the fields the mapping reads replaced by anything."""
    field = draw(st.sampled_from(["comments", "live_comments", "mentions", "feed", "other"]))
    payload = meta_base(field, draw(st.sampled_from(["comment", "post", "reaction", "share"])))
    for path in draw(st.lists(st.sampled_from(META_PATHS), min_size=1, max_size=3)):
        node: Any = payload
        for step in path[:-1]:
            if (isinstance(node, dict) and step in node) or (
                isinstance(node, list) and isinstance(step, int) and step < len(node)
            ):
                node = node[step]
            else:
                break
        else:
            last = path[-1]
            if isinstance(node, dict) or (
                isinstance(node, list) and isinstance(last, int) and last < len(node)
            ):
                node[last] = draw(anything)
    return payload


@st.composite
def talkwalker_payloads(draw: st.DrawFn) -> Any:
    """A Talkwalker result (the shipped ``listening`` webhook's mapping) with one or two of the
    fields the mapping reads replaced by anything, or its record list replaced."""
    record: dict[str, Any] = {
        "url": "https://x.com/p/1",
        "published": int(time.time() * 1000),
        "content": "fine",
        "sentiment": 2,
        "source_type": ["SOCIALMEDIA_TWITTER"],
        "reach": "1,204",
        "extra_author_attributes": {"name": "Mia"},
        "lang": "en",
    }
    for name in draw(st.lists(st.sampled_from(sorted(record)), min_size=1, max_size=2)):
        record[name] = draw(anything)
    if draw(st.integers(0, 9)) == 0:
        record.pop("url")  # no id: one is derived from the whole record
    records = (
        draw(st.one_of(st.just([{"data": record}]), anything))
        if draw(st.integers(0, 9)) == 0
        else [{"data": record}]
    )
    return {"chunk_result": {"data": records}}


@st.composite
def bodies(draw: st.DrawFn, documents: st.SearchStrategy[Any], payload: bool = False) -> bytes:
    """One document, an array or NDJSON of them, or raw bytes, maybe with bytes changed (a
    webhook ``payload`` is mostly one document)."""
    framings = ["one"] * 6 if payload else ["one", "array", "array", "ndjson"]
    framing = draw(st.sampled_from([*framings, "raw"]))
    if framing == "raw":
        return draw(st.binary(max_size=200))
    docs = draw(st.lists(documents, min_size=1, max_size=4))
    texts = [encode(d).encode("utf-8", "surrogatepass") for d in docs]
    body = {"one": texts[0], "array": b"[" + b",".join(texts) + b"]", "ndjson": b"\n".join(texts)}[
        framing
    ]
    edits = draw(st.integers(1, 2)) if draw(st.integers(0, 4)) == 0 else 0
    for _ in range(edits):  # a careless or hostile edit of the bytes
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=3)) + body[at:]
    return body


header_values = st.one_of(
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00")),
    st.sampled_from(["é".encode(), "é".encode("latin-1"), b"\xff\xfe", b"", b" "]),
)
content_types = st.sampled_from(
    [b"application/json", b"application/x-ndjson", b"application/jsonl", b"text/plain", b"\xff"]
)


def authorised(draw: st.DrawFn, name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    """The header, mostly right (so the code behind it runs), else any bytes."""
    trusted = draw(st.integers(0, 9)) < 8
    return [(name, value if trusted else draw(header_values))]


def extra_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", draw(content_types))]
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([b"content-length", b"host", b"accept", b"x-any", b"cookie"]))
        headers.append((name, draw(header_values)))
    return headers


Request = tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]


@st.composite
def event_posts(draw: st.DrawFn) -> Request:
    """POST /v1/events: events with odd fields, any framing, a token mostly right."""
    body = draw(bodies(events()))
    auth = authorised(draw, b"authorization", b"Bearer " + TOKEN.encode())
    return "POST", "/v1/events", b"", auth + extra_headers(draw), body


@st.composite
def meta_posts(draw: st.DrawFn) -> Request:
    """POST /v1/webhooks/meta: notifications with odd fields, mostly signed right."""
    body = draw(bodies(meta_payloads(), payload=True))
    [(name, value)] = meta_signed(body)
    return (
        "POST",
        "/v1/webhooks/meta",
        b"",
        authorised(draw, name, value) + extra_headers(draw),
        body,
    )


@st.composite
def meta_handshakes(draw: st.DrawFn) -> Request:
    """GET /v1/webhooks/meta: the handshake with any mode, challenge and verify token."""
    token = VERIFY.encode() if draw(st.booleans()) else draw(st.binary(max_size=12))
    mode = draw(st.sampled_from([b"subscribe", b"", b"%ff", b"\xe9"]))
    query = b"hub.mode=" + mode + b"&hub.challenge=" + draw(st.binary(max_size=12))
    query += b"&hub.verify_token=" + token
    if draw(st.booleans()):
        query = b"hub.verify_token=" + draw(st.binary(max_size=12)) + b"&" + query
    return "GET", "/v1/webhooks/meta", query, extra_headers(draw), b""


@st.composite
def webhook_posts(draw: st.DrawFn) -> Request:
    """POST /v1/webhooks/<name>: talkwalker records (mapped) or events, mostly signed right."""
    if draw(st.booleans()):
        body = draw(bodies(talkwalker_payloads(), payload=True))
        [(name, value)] = listening_hook_signed(body)
        path = "/v1/webhooks/listening"
    else:
        body = draw(bodies(events()))
        [(name, value)] = events_hook_signed(body)
        path = "/v1/webhooks/events"
    return "POST", path, b"", authorised(draw, name, value) + extra_headers(draw), body


@st.composite
def other_requests(draw: st.DrawFn) -> Request:
    """Any method on any path (known ones too), with any query, headers and body."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    known = ["/healthz", "/metrics", "/docs", "/openapi.json", "/v1/events", "/v1/webhooks/meta"]
    path = draw(st.one_of(st.sampled_from(known), st.text(max_size=20).map(lambda t: "/" + t)))
    query = draw(st.binary(max_size=40))
    return method, path, query, extra_headers(draw), draw(st.binary(max_size=50))


def check(request: Request, mood: str) -> None:
    """The property: no 5xx but Kafka's 503; whatever is written reads back as events."""
    method, path, query, headers, body = request
    writer = WRITERS[mood]
    before = len(writer.written)
    answer = run(APPS[mood], method, path, body=body, headers=headers, query=query)
    assert answer.status < 500 or answer.status == 503, (answer.status, answer.body)
    if answer.status == 503:
        expected = {"status": "unavailable"} if path == "/healthz" else None
        problem = answer.json()
        assert problem == expected or problem["error"] == "kafka_unavailable", problem
    written = writer.written[before:]
    if answer.status in (200, 422) and path.startswith("/v1/") and method == "POST":
        result = answer.json()
        assert result["accepted"] == len(written)
        assert result["rejected"] == len(result["errors"])
        assert all(len(e["detail"]) <= 300 for e in result["errors"])
    else:
        assert written == []
    assert_readable(written)


moods = st.sampled_from(sorted(WRITERS))


@PROPERTY
@given(request=event_posts(), mood=moods)
def test_no_event_post_gets_a_5xx_but_kafkas_503(request: Request, mood: str) -> None:
    check(request, mood)


@PROPERTY
@given(request=meta_posts(), mood=moods)
def test_no_meta_notification_gets_a_5xx_but_kafkas_503(request: Request, mood: str) -> None:
    check(request, mood)


@PROPERTY
@given(request=meta_handshakes())
def test_no_meta_handshake_gets_a_5xx(request: Request) -> None:
    check(request, "ok")


@PROPERTY
@given(request=webhook_posts(), mood=moods)
def test_no_webhook_post_gets_a_5xx_but_kafkas_503(request: Request, mood: str) -> None:
    check(request, mood)


@PROPERTY
@given(request=other_requests(), mood=moods)
def test_no_other_request_gets_a_5xx_but_healthz_503(request: Request, mood: str) -> None:
    check(request, mood)


def assert_readable(written: list[Accepted]) -> None:
    """What went to Kafka reads back as the same events (no NaN turned into null)."""
    now = time.time()
    for kind, _, value in envelopes(written):
        for item in orjson.loads(value):
            again = validate_item(item, now, 300, default_type=kind)  # type: ignore[arg-type]
            assert isinstance(again, Accepted), (item, again)


@PROPERTY
@given(body=st.binary(max_size=300), content_type=content_types)
def test_any_bytes_as_events_get_a_4xx_or_per_item_reasons(
    body: bytes, content_type: bytes
) -> None:
    headers = [(b"authorization", b"Bearer " + TOKEN.encode()), (b"content-type", content_type)]
    answer = run(APPS["ok"], "POST", "/v1/events", body=body, headers=headers)
    assert answer.status in (200, 400, 422), (answer.status, answer.body)
    if answer.status == 400:
        assert answer.json()["error"] in ("not_json", "not_utf8")


# -- the pure readers behind the routes, with many more examples (microseconds each) -------

PURE = settings(max_examples=2000, deadline=None)
MAPPINGS = load_ingest(SETTINGS.config_dir, SETTINGS.brands).mappings


def as_decoded(value: Any) -> Any:
    """``value`` as the gateway gets it: its JSON text read by orjson (None if refused)."""
    try:
        return orjson.loads(encode(value).encode("utf-8", "surrogatepass"))
    except orjson.JSONDecodeError:
        return None


decoded = st.one_of(readable, deep, unreadable).map(as_decoded)


@st.composite
def mapped_records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A record for a shipped mapping: each field it reads absent, as a tool sends it, or
    anything JSON can hold (as orjson decodes it) at that path."""
    name = draw(st.sampled_from(sorted(MAPPINGS)))
    record: dict[str, Any] = {}
    for rule, source in [(r, p) for r in MAPPINGS[name].rules().values() for p in r.paths()]:
        choice = draw(st.sampled_from(["absent", "usual", "anything", "anything"]))
        if choice == "absent":
            continue
        usual = {"epoch_ms": int(time.time() * 1000)}.get(rule.format, "x")
        value = usual if choice == "usual" else draw(decoded)
        node = record
        *parents, last = source.split(".") if "." in source else [source]
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[last] = value
    return name, record


@PURE
@given(case=mapped_records())
def test_mappings_map_or_reject_any_record(case: tuple[str, dict[str, Any]]) -> None:
    name, record = case
    result = apply_mapping(name, MAPPINGS[name], record)
    if isinstance(result, Rejected):
        assert result.reason == "invalid_fields" and len(result.detail) <= 300
    else:
        assert isinstance(validate_item(result, time.time(), 300), Accepted | Rejected)


@PURE
@given(payload=meta_payloads())
def test_meta_mapping_maps_or_rejects_any_payload(payload: Any) -> None:
    text = encode(payload).encode("utf-8", "surrogatepass")
    try:
        decoded_payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return  # the route answers 400 before mapping
    mapped = map_payload(decoded_payload, {IG_ACCOUNT: "acme"})
    assert {r.reason for r in mapped.rejected} <= {"invalid_fields", "unknown_account"}
    for event in mapped.events:
        assert isinstance(validate_item(event, time.time(), 300), Accepted | Rejected)


@PURE
@given(item=st.one_of(events().map(as_decoded), decoded))
def test_validation_accepts_or_rejects_any_item(item: Any) -> None:
    result = validate_item(item, time.time(), 300)
    if isinstance(result, Accepted):
        assert orjson.loads(orjson.dumps(result.body)) == result.body  # written exactly


@PURE
@given(body=bodies(events()), content_type=st.sampled_from(["application/json", "x-ndjson"]))
def test_any_body_splits_into_items_or_one_reason(body: bytes, content_type: str) -> None:
    items = parse_items(body, content_type)
    if isinstance(items, Rejected):
        assert items.reason in ("not_json", "not_utf8")
    else:
        for item in items:
            assert not isinstance(item, Rejected) or item.reason in ("not_json", "not_utf8")
