"""Event schemas: what is accepted, and the exact reason for what is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from streams.decoding import InvalidEvent, decode, decode_message
from streams.events import MAX_ENVELOPE_EVENTS, MAX_EVENT_BYTES, Interaction, Mention

MENTION = {
    "id": "m-1",
    "ts": "2026-11-22T09:30:00Z",
    "platform": "X",
    "brand": "Acme",
    "author": "@jo",
    "text": "love it",
}
INTERACTION = {
    "id": "i-1",
    "ts": "2026-11-22T09:30:00+08:00",
    "platform": "weibo",
    "brand": "acme",
    "kind": "Like",
    "content_id": "p1",
    "user_id": "u1",
}


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_mention_is_decoded_with_normalised_names() -> None:
    mention = decode(raw(MENTION), Mention)
    assert isinstance(mention, Mention)
    assert (mention.platform, mention.brand, mention.sentiment) == ("x", "acme", None)
    assert mention.ts == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert mention.schema_version == 1


def test_interaction_kind_and_timezone() -> None:
    interaction = decode(raw(INTERACTION), Interaction)
    assert isinstance(interaction, Interaction)
    assert interaction.kind == "like"
    assert interaction.ts == datetime(2026, 11, 22, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("sentiment", ["negative", "Positive", -0.7, 0, 1])
def test_upstream_sentiment_label_or_score_is_accepted(sentiment: object) -> None:
    assert isinstance(decode(raw({**MENTION, "sentiment": sentiment}), Mention), Mention)


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"not json", "not_json", "not JSON: Invalid JSON: expected ident at line 1 column 2"),
        (b"[1, 2]", "not_json", "not a JSON object"),
        (b"\xff\xfe{}", "not_utf8", "not UTF-8: invalid start byte at byte 0"),
        (None, "not_json", "empty message (tombstone)"),
        (
            raw({k: v for k, v in MENTION.items() if k != "id"}),
            "invalid_fields",
            "id: required field is missing",
        ),
        (raw({**MENTION, "id": 42}), "invalid_fields", "id: Input should be a valid string"),
        (
            raw({**MENTION, "ts": "yesterday"}),
            "invalid_fields",
            "ts: Input should be a valid datetime or date, input is too short",
        ),
        (
            raw({**MENTION, "ts": "2026-11-22T09:30:00"}),
            "invalid_fields",
            "ts: Input should have timezone info",
        ),
        (
            raw({**MENTION, "sentiment": "angry"}),
            "invalid_fields",
            "sentiment: sentiment 'angry' is not one of positive, negative, neutral",
        ),
        (
            raw({**MENTION, "sentiment": 3}),
            "invalid_fields",
            "sentiment: sentiment score 3 is outside [-1, 1]",
        ),
        (
            raw({**MENTION, "schema_version": 2}),
            "unknown_schema_version",
            "schema_version must be 1",
        ),
        (raw({"id": "m"}), "invalid_fields", "ts: required field is missing (and 4 more)"),
    ],
)
def test_bad_mentions_get_a_reason(payload: bytes | None, reason: str, detail: str) -> None:
    assert decode(payload, Mention) == InvalidEvent(reason, detail)


def test_unknown_interaction_kind_is_named() -> None:
    result = decode(raw({**INTERACTION, "kind": "poke"}), Interaction)
    assert isinstance(result, InvalidEvent)
    assert result.reason == "invalid_fields"
    assert result.detail.startswith("kind: kind 'poke' is not one of impression, like, comment")


@pytest.mark.parametrize(
    ("count", "detail"),
    [
        (0, "count: Input should be greater than or equal to 1"),
        (2.5, "count: Input should be a valid integer"),
        (True, "count: Input should be a valid integer"),
        ("200", "count: Input should be a valid integer"),
        (10**10, "count: Input should be less than or equal to 1000000000"),
    ],
)
def test_a_count_is_a_whole_number_of_one_kind(count: object, detail: str) -> None:
    assert decode(raw({**INTERACTION, "count": count}), Interaction) == InvalidEvent(
        "invalid_fields", detail
    )


def test_a_count_stands_for_several_likes_and_never_for_orders() -> None:
    likes = decode(raw({**INTERACTION, "count": 200}), Interaction)
    assert isinstance(likes, Interaction) and likes.count == 200
    one = decode(raw(INTERACTION), Interaction)
    assert isinstance(one, Interaction) and one.count == 1
    assert decode(
        raw({**INTERACTION, "kind": "order", "value": 30, "count": 2}), Interaction
    ) == InvalidEvent(
        "invalid_fields",
        "count: is for events that stand for several likes, impressions or "
        "clicks; an event with a value (kind order) is one event: send one per order or "
        "response",
    )


def test_money_kinds_need_a_value() -> None:
    order = decode(raw({**INTERACTION, "kind": "order", "value": 45.5}), Interaction)
    assert isinstance(order, Interaction) and order.value == 45.5
    assert decode(raw({**INTERACTION, "kind": "order"}), Interaction) == InvalidEvent(
        "invalid_fields", "value: required for kind 'order' (the order's revenue)"
    )
    assert decode(raw({**INTERACTION, "kind": "spend", "value": -1}), Interaction) == InvalidEvent(
        "invalid_fields", "value: Input should be greater than or equal to 0"
    )
    assert isinstance(decode(raw({**INTERACTION, "kind": "refund"}), Interaction), Interaction)


def test_oversize_message_is_refused_before_parsing() -> None:
    result = decode(b" " * (MAX_EVENT_BYTES + 1), Mention)
    assert result == InvalidEvent(
        "oversize", f"{MAX_EVENT_BYTES + 1} bytes is over the {MAX_EVENT_BYTES} limit"
    )


def test_envelope_events_are_decoded_one_by_one() -> None:
    second = {**MENTION, "id": "m-2", "text": "meh"}
    decoded = decode_message(raw([MENTION, second]), Mention)
    assert [(d.index, d.event.id) for d in decoded] == [(0, "m-1"), (1, "m-2")]  # type: ignore[union-attr]
    # A valid event's own bytes are rebuilt on demand (for a dead letter, e.g. ts in the future).
    assert json.loads(decoded[1].item_bytes() or b"") == {
        **second,
        "platform": "x",
        "brand": "acme",
    }


def test_a_bad_event_in_an_envelope_is_rejected_alone_with_its_own_bytes() -> None:
    bad = {**MENTION, "id": "m-3", "sentiment": "furious"}
    decoded = decode_message(raw([MENTION, bad, 7]), Mention)
    assert isinstance(decoded[0].event, Mention)
    assert decoded[1].event == InvalidEvent(
        "invalid_fields", "sentiment: sentiment 'furious' is not one of positive, negative, neutral"
    )
    assert (decoded[1].index, json.loads(decoded[1].item_bytes() or b"")) == (1, bad)
    assert decoded[2].event == InvalidEvent("not_json", "not a JSON object")
    assert decoded[2].item_bytes() == b"7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"[]", InvalidEvent("invalid_fields", "empty envelope: no events in the array")),
        (
            raw([MENTION] * (MAX_ENVELOPE_EVENTS + 1)),
            InvalidEvent("oversize", f"envelope of {MAX_ENVELOPE_EVENTS + 1} events is over 1000"),
        ),
        (
            b"[" + raw(MENTION) + b",",
            InvalidEvent(
                "not_json", "not JSON: Invalid JSON: EOF while parsing a value at line 1 column 115"
            ),
        ),
    ],
)
def test_envelopes_that_are_not_a_list_of_events_are_one_invalid_message(
    value: bytes, expected: InvalidEvent
) -> None:
    decoded = decode_message(value, Mention)
    assert [(d.event, d.index, d.raw) for d in decoded] == [(expected, None, value)]


class _Recorder:
    """Stands in for KafkaProducer: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> _Recorder:
        self.sent.append((topic, key, value))
        return self  # as KafkaProducer's future: add_errback

    def add_errback(self, callback: object) -> None:
        pass

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def test_event_producer_batches_per_topic_and_brand_into_envelopes() -> None:
    from ingest.event_producer import EventProducer

    recorder = _Recorder()
    producer = EventProducer(recorder, envelope=2, linger=60)
    globex = {**MENTION, "id": "m-9", "brand": "globex"}
    for event in (MENTION, globex, {**MENTION, "id": "m-2"}):
        producer.send("mentions", event)
    assert [(t, k, [e["id"] for e in json.loads(v)]) for t, k, v in recorder.sent] == [
        ("mentions", b"Acme", ["m-1", "m-2"])  # full: sent at once, keyed by brand
    ]
    producer.close()  # the rest goes out on close
    assert [json.loads(v)[0]["id"] for _, _, v in recorder.sent[1:]] == ["m-9"]
    assert producer.messages == 2
    decoded = decode_message(recorder.sent[0][2], Mention)
    assert [d.event.id for d in decoded] == ["m-1", "m-2"]  # type: ignore[union-attr]


def test_a_content_cost_needs_its_cost_and_counts_once_with_it() -> None:
    cost = {**INTERACTION, "kind": "content_cost"}
    assert decode(raw(cost), Interaction) == InvalidEvent(
        "invalid_fields",
        "value: required for kind 'content_cost' (the content item's production cost)",
    )
    negative = decode(raw({**cost, "value": -5}), Interaction)
    assert isinstance(negative, InvalidEvent) and negative.detail.startswith(
        "value: Input should be greater"
    )
    many = decode(raw({**cost, "value": 80, "count": 3}), Interaction)
    assert isinstance(many, InvalidEvent) and many.detail.startswith("count: is for events")
    good = decode(raw({**cost, "value": 80}), Interaction)
    assert isinstance(good, Interaction) and (good.kind, good.value) == ("content_cost", 80)
