"""Hostile and careless input to every route of the gateway: the exact status, reason and
detail each class gets, and that one bad item of a batch never costs the others (the ASGI app
with a fake Kafka writer; the real process is in tests/e2e/test_ingest_e2e.py)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from ingest.kafka_writer import KafkaWriter
from tests.ingest.asgi_client import (
    IG_ACCOUNT,
    SETTINGS,
    VERIFY,
    FakeWriter,
    NotAcknowledged,
    bearer,
    call,
    events_hook_signed,
    gateway_app,
    listening_hook_signed,
    mention,
    meta_signed,
    order,
)

JSON = [(b"content-type", b"application/json")]
NDJSON = [(b"content-type", b"application/x-ndjson")]
HUGE = b"1" * 5000  # a 5,000-digit number
NAN_HINT = "NaN and Infinity are not JSON numbers: send null or leave the field out"
TOO_LARGE_HINT = "the number is too large (beyond about 1.8e308)"
NOT_A_TIME = "is not a time (ISO 8601 such as 2026-11-30T12:00:00+0000, or epoch seconds)"
SURROGATE_HINT = "half of a \\u surrogate pair alone is not Unicode text"


def one(n: int = 1, **fields: Any) -> bytes:
    return orjson.dumps(mention(n, **fields))


def with_extra(n: int, raw: bytes) -> bytes:
    """A valid mention whose extra field ``extra`` holds ``raw`` JSON text as sent."""
    return one(n)[:-1] + b',"extra":' + raw + b"}"


async def post(body: bytes, headers: Any = None, writer: FakeWriter | None = None) -> Any:
    app = gateway_app(writer)
    answer = await call(app, "POST", "/v1/events", body=body, headers=headers or [*bearer(), *JSON])
    return answer.status, answer.json()


def batch(accepted: int, *errors: tuple[int, str, str]) -> dict[str, Any]:
    return {
        "accepted": accepted,
        "rejected": len(errors),
        "skipped": 0,
        "errors": [{"index": i, "reason": r, "detail": d} for i, r, d in errors],
    }


# -- whole bodies that are not JSON: 400 with the reason, nothing written -----------------


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (
            with_extra(1, HUGE),
            "not_json",
            "the body is not JSON: number is infinity when parsed as double at byte {at}; "
            + TOO_LARGE_HINT,
        ),
        (
            with_extra(1, b"NaN"),
            "not_json",
            "the body is not JSON: unexpected character, expected a JSON value at byte {at}; "
            + NAN_HINT,
        ),
        (
            with_extra(1, b"Infinity"),
            "not_json",
            "the body is not JSON: unexpected character, expected a JSON value at byte {at}; "
            + NAN_HINT,
        ),
        (
            with_extra(1, b"-Infinity"),
            "not_json",
            "the body is not JSON: no digit after sign at byte {at+1}; " + NAN_HINT,
        ),
        (
            with_extra(1, b'"\\ud800"'),
            "not_json",
            "the body is not JSON: no low surrogate in string at byte {at+1}; " + SURROGATE_HINT,
        ),
        (
            with_extra(1, b'"\xff"'),
            "not_utf8",
            "the body is not UTF-8: invalid start byte at byte {at+1}",
        ),
        (
            b'{"a":' * 1100 + b"1" + b"}" * 1100,
            "not_json",
            "the body is not JSON: depth limit exceeded at byte 5121; nested deeper than "
            "1,024 levels",
        ),
        (
            b'[{"a": 1}, {"b":',
            "not_json",
            "the body is not JSON: unexpected end of data at byte 16",
        ),
        (
            b"[1,,2]",
            "not_json",
            "the body is not JSON: unexpected character, expected a JSON value at byte 3",
        ),
        (b"5", "not_json", "the body is neither an event object nor an array of events"),
        (
            b" \n",
            "not_json",
            "the body is empty: send an event object, an array of events or NDJSON",
        ),
    ],
    ids=[
        "5000-digits",
        "NaN",
        "Infinity",
        "-Infinity",
        "lone-surrogate",
        "not-utf8",
        "deep",
        "unterminated",
        "empty-item",
        "scalar",
        "empty",
    ],
)
async def test_a_body_that_is_not_json_is_refused_whole_with_where(
    body: bytes, error: str, detail: str
) -> None:
    writer = FakeWriter()
    at = body.find(b'"extra":') + len(b'"extra":')
    status, answer = await post(body, writer=writer)
    expected = detail.replace("{at+1}", str(at + 1))
    assert (status, answer) == (400, {"error": error, "detail": expected.replace("{at}", str(at))})
    assert writer.written == []


# -- one bad item of an array or one line of NDJSON costs only itself ----------------------


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [
        (
            HUGE,
            "not_json",
            "not JSON: number is infinity when parsed as double at byte {at}; " + TOO_LARGE_HINT,
        ),
        (
            b"NaN",
            "not_json",
            "not JSON: unexpected character, expected a JSON value at byte {at}; " + NAN_HINT,
        ),
        (
            b'"\\ud800"',
            "not_json",
            "not JSON: no low surrogate in string at byte {at+1}; " + SURROGATE_HINT,
        ),
        (
            b'"\\udc00x"',
            "not_json",
            "not JSON: invalid high surrogate in string at byte {at+1}; " + SURROGATE_HINT,
        ),
        (b'"\xff"', "not_utf8", "not UTF-8: invalid start byte at byte {at+1}"),
        (b"[" * 300 + b"]" * 300, "invalid_fields", "extra: nested deeper than 254 levels"),
    ],
    ids=[
        "5000-digits",
        "NaN",
        "lone-surrogate",
        "lone-low-surrogate",
        "not-utf8",
        "deep-for-kafka",
    ],
)
@pytest.mark.parametrize("framing", ["array", "ndjson"])
async def test_one_bad_item_of_a_batch_is_rejected_alone(
    bad: bytes, reason: str, detail: str, framing: str
) -> None:
    writer = FakeWriter()
    items = [one(1), with_extra(2, bad), one(3)]
    if framing == "array":
        body, headers = b"[" + b",".join(items) + b"]", [*bearer(), *JSON]
    else:
        body, headers = b"\n".join(items) + b"\n", [*bearer(), *NDJSON]
    at = body.find(b'"extra":') + len(b'"extra":')
    expected = detail.replace("{at+1}", str(at + 1))
    expected = expected.replace("{at}", str(at))
    assert await post(body, headers, writer) == (200, batch(2, (1, reason, expected)))
    assert [e.id for e in writer.written] == ["m-1", "m-3"]


async def test_bounded_numbers_and_wrong_types_are_refused_per_item_by_field() -> None:
    writer = FakeWriter()
    items = [
        order(1, value=1e308),
        mention(2, author_followers=10**13),
        order(3, value=[]),
        mention(4, author_followers=10**19),  # beyond int64: orjson reads it as a float
        [1],
        {"type": [], "id": "x"},
        mention(7, kind="k" * 100_000, type="interaction"),
        mention(8),
    ]
    bound = "Input should be less than or equal to 1000000000000"
    assert await post(orjson.dumps(items), writer=writer) == (
        200,
        batch(
            1,
            (0, "invalid_fields", f"value: {bound}"),
            (1, "invalid_fields", f"author_followers: {bound}"),
            (2, "invalid_fields", "value: Input should be a valid number"),
            (3, "invalid_fields", f"author_followers: {bound}"),
            (4, "invalid_fields", "an event is a JSON object, not an array"),
            (5, "invalid_fields", "type: an array is not mention, interaction or snapshot"),
            # A detail quotes at most 300 characters of what was sent.
            (6, "invalid_fields", "kind: kind '" + "k" * 285 + "..."),
        ),
    )
    assert [e.id for e in writer.written] == ["m-8"]


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Bearer é".encode(), "Bearer é".encode("latin-1"), b"Bearer \xff\xfe", b"Basic x", b"Bearer "],
)
async def test_a_bearer_token_of_any_bytes_is_401(authorization: bytes) -> None:
    writer = FakeWriter()
    app = gateway_app(writer)
    answer = await call(
        app, "POST", "/v1/events", body=one(), headers=[(b"authorization", authorization)]
    )
    assert (answer.status, answer.headers["www-authenticate"], answer.json()) == (
        401,
        "Bearer",
        {
            "error": "unauthorized",
            "detail": "send Authorization: Bearer <token> with a source's token",
        },
    )
    assert writer.written == []


@pytest.mark.parametrize(
    ("length", "status", "answer"),
    [
        (
            b"9" * 5000,
            413,
            {
                "error": "too_large",
                "detail": "a 5000-digit number of bytes is over the 1048576-byte limit",
            },
        ),
        (
            b"2000000",
            413,
            {"error": "too_large", "detail": "2000000 bytes is over the 1048576-byte limit"},
        ),
        # Not ASCII digits (h11 refuses these before the app): the body as it arrives counts.
        ("²".encode("latin-1"), 200, batch(1)),
    ],
)
async def test_content_length_is_read_without_trusting_it(
    length: bytes, status: int, answer: dict[str, Any]
) -> None:
    headers = [*bearer(), *JSON, (b"content-length", length)]
    assert await post(one(), headers) == (status, answer)


# -- Meta webhooks ---------------------------------------------------------------------------


def change(value: Any, field: str = "comments", **entry: Any) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ACCOUNT,
                "time": int(time.time()),
                "changes": [{"field": field, "value": value}],
            }
            | entry
        ],
    }


COMMENT = {"id": "c1", "text": "hi", "from": {"id": "9", "username": "mia"}, "media": {"id": "m1"}}
CHANGE = "entry.0.changes.0"


async def meta_post(payload: Any, writer: FakeWriter | None = None) -> Any:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    answer = await call(
        gateway_app(writer), "POST", "/v1/webhooks/meta", body=body, headers=meta_signed(body)
    )
    return answer.status, answer.json()


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (
            change(COMMENT | {"created_time": "not-a-time"}),
            f"{CHANGE}.value.created_time: 'not-a-time' {NOT_A_TIME}",
        ),
        (
            change(COMMENT | {"created_time": 1e20}),
            f"{CHANGE}.value.created_time: 1e+20 is beyond the year 9999",
        ),
        (change(COMMENT | {"created_time": -1}), f"{CHANGE}.value.created_time: -1 is before 1970"),
        (
            change(COMMENT | {"created_time": []}),
            f"{CHANGE}.value.created_time: a time (epoch seconds or ISO 8601), not an array",
        ),
        (
            change(COMMENT | {"created_time": True}),
            f"{CHANGE}.value.created_time: a time (epoch seconds or ISO 8601), not true/false",
        ),
        (
            change(COMMENT, time="yesterday"),
            f"entry.0.time: 'yesterday' {NOT_A_TIME}",
        ),
        (
            {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "changes": 5}]},
            "entry.0.changes: a list, not a number",
        ),
        ({"object": "instagram", "entry": [5]}, "entry.0: an object, not a number"),
        (
            {"object": "instagram", "entry": [{"id": [], "changes": []}]},
            "entry.0.id: a string or a number, not an array",
        ),
        (change([]), f"{CHANGE}: a change has a value object"),
        (change(COMMENT | {"from": []}), f"{CHANGE}.value.from: an object, not an array"),
        (
            change(COMMENT | {"from": {"id": {"a": 1}}}),
            f"{CHANGE}.value.from.id: a string or a number, not an object",
        ),
        (change(COMMENT | {"media": 5}), f"{CHANGE}.value.media: an object, not a number"),
        (change(COMMENT | {"text": {"a": 1}}), f"{CHANGE}.value.text: a string, not an object"),
        (change(COMMENT | {"id": [1]}), f"{CHANGE}.value.id: a string or a number, not an array"),
        (
            change({"item": "comment", "post_id": True}, "feed"),
            f"{CHANGE}.value.post_id: a string or a number, not true/false",
        ),
        (
            {
                "object": "page",
                "entry": [
                    {"id": "104000000000001", "messaging": [{"sender": 5, "message": {"mid": "x"}}]}
                ],
            },
            "entry.0.messaging.0.sender: an object, not a number",
        ),
        (
            {
                "object": "page",
                "entry": [
                    {
                        "id": "104000000000001",
                        "messaging": [{"message": {"mid": "x"}, "timestamp": 1e20}],
                    }
                ],
            },
            "entry.0.messaging.0.timestamp: 1e+20 is beyond the year 9999",
        ),
        (
            {"object": "page", "entry": [{"id": "104000000000001", "messaging": "abc"}]},
            "entry.0.messaging: a list, not a string",
        ),
        ({"entry": {"id": IG_ACCOUNT}}, "entry: a Meta payload has an entry list"),
        ([], "entry: a Meta payload has an entry list"),
    ],
    ids=[
        "time-text",
        "time-1e20",
        "time-negative",
        "time-list",
        "time-bool",
        "entry-time",
        "changes-5",
        "entry-5",
        "entry-id-list",
        "value-list",
        "from-list",
        "from-id-object",
        "media-5",
        "text-object",
        "id-list",
        "post-id-bool",
        "sender-5",
        "message-time-1e20",
        "messaging-string",
        "entry-object",
        "payload-list",
    ],
)
async def test_meta_fields_of_the_wrong_kind_reject_that_change_alone(
    payload: Any, detail: str
) -> None:
    assert await meta_post(payload) == (422, batch(0, (0, "invalid_fields", detail)))


async def test_a_bad_change_beside_good_ones_costs_only_itself() -> None:
    writer = FakeWriter()
    payload = change(COMMENT)
    payload["entry"][0]["changes"].append(
        {"field": "comments", "value": COMMENT | {"created_time": 1e20}}
    )
    payload["entry"].append({"id": IG_ACCOUNT, "changes": 5})
    status, answer = await meta_post(payload, writer)
    assert (status, answer) == (
        200,
        batch(
            2,
            (
                2,
                "invalid_fields",
                "entry.0.changes.1.value.created_time: 1e+20 is beyond the year 9999",
            ),
            (3, "invalid_fields", "entry.1.changes: a list, not a number"),
        ),
    )
    assert [e.id for e in writer.written] == ["ig-comment-c1", "ig-comment-c1-comment"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b'{"entry": NaN}',
            "the body is not JSON: unexpected character, expected a JSON value at byte 10; "
            + NAN_HINT,
        ),
        (
            b'{"entry": [' + HUGE + b"]}",
            "the body is not JSON: number is infinity when parsed as double at byte 11; "
            + TOO_LARGE_HINT,
        ),
        (
            b'{"entry": ["\\ud800"]}',
            f"the body is not JSON: no low surrogate in string at byte 12; {SURROGATE_HINT}",
        ),
        (b'{"entry": "\xff"}', "the body is not UTF-8: invalid start byte at byte 11"),
    ],
)
async def test_a_signed_meta_body_that_is_not_json_is_400(body: bytes, detail: str) -> None:
    error = "not_utf8" if "UTF-8" in detail else "not_json"
    assert await meta_post(body) == (400, {"error": error, "detail": detail})


@pytest.mark.parametrize(
    "header", ["sha256=é".encode(), "sha256=é".encode("latin-1"), b"sha256=\xff", b"", b"md5=1"]
)
async def test_a_signature_header_of_any_bytes_is_401(header: bytes) -> None:
    for path, name in (
        ("/v1/webhooks/meta", b"x-hub-signature-256"),
        ("/v1/webhooks/listening", b"x-signature-256"),
        ("/v1/webhooks/events", b"x-socialpulse-signature"),
    ):
        answer = await call(gateway_app(), "POST", path, body=b"{}", headers=[(name, header)])
        assert (answer.status, answer.json()["error"]) == (401, "bad_signature"), path


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        (f"hub.mode=subscribe&hub.challenge=42&hub.verify_token={VERIFY}".encode(), 200, b"42"),
        (
            b"hub.mode=subscribe&hub.challenge=42&hub.verify_token=%C3%A9",
            403,
            b"verification refused",
        ),
        (
            b"hub.mode=subscribe&hub.challenge=42&hub.verify_token=\xe9\xff",
            403,
            b"verification refused",
        ),
        (
            b"hub.mode=subscribe&hub.challenge=42&hub.verify_token=%ED%A0%80",
            403,
            b"verification refused",
        ),
        (b"hub.mode=%ff&hub.verify_token", 403, b"verification refused"),
    ],
    # Fixed ids: the right token is random per run, and parallel workers must see one list.
    ids=["the-token", "another-word", "not-utf8", "lone-surrogate", "bad-mode-no-token"],
)
async def test_the_meta_handshake_compares_any_verify_token(
    query: bytes, status: int, body: bytes
) -> None:
    answer = await call(gateway_app(), "GET", "/v1/webhooks/meta", query=query)
    assert (answer.status, answer.body) == (status, body)


# -- generic webhooks ----------------------------------------------------------------------


async def hook_post(name: str, payload: Any, writer: FakeWriter | None = None) -> Any:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    signed = listening_hook_signed(body) if name == "listening" else events_hook_signed(body)
    answer = await call(
        gateway_app(writer), "POST", f"/v1/webhooks/{name}", body=body, headers=signed
    )
    return answer.status, answer.json()


def talkwalker(*records: Any) -> dict[str, Any]:
    return {"chunk_result": {"data": list(records)}}


def tw(n: int, **data: Any) -> dict[str, Any]:
    record = {"url": f"https://x.com/p/{n}", "published": int(time.time() * 1000) - 60_000}
    return {"data": record | {"content": "ok", "source_type": ["SOCIALMEDIA_TWITTER"]} | data}


async def test_mapped_webhook_records_of_the_wrong_kind_are_rejected_alone() -> None:
    writer = FakeWriter()
    payload = talkwalker(
        5,
        tw(2, published="abc"),
        tw(3, source_type=[[1]]),
        tw(4, reach="1e400"),
        tw(5, sentiment="nan"),
        tw(6),
    )
    assert await hook_post("listening", payload, writer) == (
        200,
        batch(
            1,
            (0, "invalid_fields", "a record is a JSON object, not a number"),
            (
                1,
                "invalid_fields",
                "ts (from 'data.published'): could not convert string to float: 'abc'",
            ),
            (
                2,
                "invalid_fields",
                "platform (from 'data.source_type.0'): a string or a number, not an array",
            ),
            (
                3,
                "invalid_fields",
                "author_followers (from 'data.reach'): cannot convert float infinity to integer",
            ),
            (
                4,
                "invalid_fields",
                "sentiment: nan is not a JSON number (NaN and Infinity are not JSON): send null "
                "or leave the field out",
            ),
        ),
    )
    assert len(writer.written) == 1


async def test_a_webhook_with_too_many_records_is_413_before_mapping() -> None:
    assert await hook_post("listening", talkwalker(*[1] * 5001)) == (
        413,
        {
            "error": "too_many_events",
            "detail": "5001 items is over the batch limit of 5000; split the batch",
        },
    )


async def test_an_unmapped_webhook_splits_its_batch_like_events() -> None:
    writer = FakeWriter()
    body = b"[" + one(1) + b"," + with_extra(2, b"NaN") + b"]"
    at = body.find(b'"extra":') + len(b'"extra":')
    detail = f"not JSON: unexpected character, expected a JSON value at byte {at}; {NAN_HINT}"
    assert await hook_post("events", body, writer) == (200, batch(1, (1, "not_json", detail)))
    assert [e.id for e in writer.written] == ["m-1"]


async def test_an_unknown_webhook_name_is_quoted_short() -> None:
    answer = await call(gateway_app(), "POST", "/v1/webhooks/" + "n" * 500, body=b"{}")
    assert (answer.status, answer.json()) == (
        404,
        {
            "error": "unknown_webhook",
            "detail": "'" + "n" * 60 + "'... is not a webhook of ingest.yaml",
        },
    )


# -- health, metrics, Kafka --------------------------------------------------------------------


async def test_healthz_says_healthy_or_not_and_nothing_more() -> None:
    up = await call(gateway_app(FakeWriter(connected=True)), "GET", "/healthz")
    down = await call(gateway_app(FakeWriter(connected=False)), "GET", "/healthz")
    assert (up.status, up.json()) == (200, {"status": "ok"})
    assert (down.status, down.json()) == (503, {"status": "unavailable"})


async def test_metrics_take_any_query_and_accept_header() -> None:
    answer = await call(
        gateway_app(),
        "GET",
        "/metrics",
        query=b"name[]=\xff&name[]=%ff",
        headers=[
            (b"accept", b"application/openmetrics-text; version=\xff"),
            (b"accept-encoding", b"\xff"),
        ],
    )
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"
    assert b"# TYPE socialpulse_ingest_requests_total counter" in answer.body


async def test_kafka_not_connected_or_not_acknowledging_is_503_with_retry_after() -> None:
    never = KafkaWriter(
        SETTINGS.pipeline.kafka, SETTINGS.pipeline.topics, 100, 1.0
    )  # never started: not connected
    refusing = FakeWriter(fail=NotAcknowledged("Kafka did not acknowledge within 15 s"))
    bootstrap = SETTINGS.pipeline.kafka.bootstrap_servers
    for writer, why in (
        (never, f"not connected to Kafka at {bootstrap} yet"),
        (refusing, "Kafka did not acknowledge within 15 s"),
    ):
        app = gateway_app(writer)  # type: ignore[arg-type]
        answer = await call(app, "POST", "/v1/events", body=one(), headers=[*bearer(), *JSON])
        assert (answer.status, answer.headers["retry-after"], answer.json()) == (
            503,
            "1",
            {
                "error": "kafka_unavailable",
                "detail": f"{why}; nothing of this request is acknowledged, retry it (event ids "
                "make a retry count once)",
            },
        )


@pytest.mark.parametrize(
    ("body", "headers", "count"),
    [
        (b"[" + b",".join([b"1"] * 5001) + b"]", JSON, "5001"),
        # Read item by item (one is not JSON): not read past the limit.
        (b"[" + b",".join([b"1"] * 100_000) + b",NaN]", JSON, "more than 5000"),
        (b"\n".join([b"1"] * 5001), NDJSON, "more than 5000"),
    ],
    ids=["array", "array-with-a-bad-item", "ndjson"],
)
async def test_a_batch_over_the_limit_is_413_however_it_is_framed(
    body: bytes, headers: Any, count: str
) -> None:
    detail = f"{count} items is over the batch limit of 5000; split the batch"
    status, answer = await post(body, [*bearer(), *headers])
    assert (status, answer) == (413, {"error": "too_many_events", "detail": detail})
