"""Property-based: whatever bytes or JSON arrive, the decoder and the batch planner never raise,
and every event of every message is accounted for exactly once: counted (or filtered), too late,
or dead-lettered with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.batch import RawMessage, plan_batch
from streams.decoding import INVALID_REASONS, decode_message
from streams.events import MAX_ENVELOPE_BYTES, MAX_ENVELOPE_EVENTS, Mention
from streams.windows import WindowPlan

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
WINDOWS = WindowPlan.of([60, 300, 3600, 86400], allowed_lateness=600, max_future=300)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
timestamps = st.one_of(
    st.integers(-7200, 7200).map(lambda s: (NOW + timedelta(seconds=s)).isoformat()),
    st.text(max_size=12),
    st.integers(),
)
mentions = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "ts": timestamps,
        "platform": st.sampled_from(["x", "weibo", "X", "", "tik tok"]),
        "brand": st.sampled_from(["acme", "Acme", "", "a" * 200]),
        "author": st.text(max_size=8),
        "text": st.text(max_size=40),
    },
    optional={
        "sentiment": json_values | st.sampled_from(["positive", "negative", "neutral"]),
        "author_followers": st.integers(-5, 10**12),
        "schema_version": st.integers(0, 3),
        "is_bot": json_values,
        "lang": json_values,
    },
)
interactions = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "ts": timestamps,
        "platform": st.sampled_from(["x", "tiktok", ""]),
        "brand": st.sampled_from(["acme", ""]),
        "kind": st.sampled_from(["like", "order", "spend", "followers", "nps_response", "nope"]),
        "content_id": st.text(max_size=6),
        "user_id": st.text(max_size=6),
    },
    optional={"value": json_values, "campaign": json_values},
)


def events_in(raw: bytes) -> int:
    """How many events a message holds, by the envelope rule read plainly: a JSON array of 1 to
    MAX_ENVELOPE_EVENTS items within MAX_ENVELOPE_BYTES is that many events; anything else (one
    object, an empty or oversized array, bytes that are not JSON) is one event."""
    try:
        value = json.loads(raw.decode("utf-8"))  # the stdlib reads NaN, as the worker's does
    except (UnicodeDecodeError, ValueError, RecursionError):
        return 1
    if isinstance(value, list) and 0 < len(value) <= MAX_ENVELOPE_EVENTS:
        return len(value) if len(raw) <= MAX_ENVELOPE_BYTES else 1
    return 1


def accounted(messages: list[bytes], event_type: str) -> None:
    raws = [RawMessage("t", 0, i, b"k", value) for i, value in enumerate(messages)]
    expected = sum(events_in(m) for m in messages)
    for known in (None, {"acme": {"x", "tiktok"}}):  # lenient, and strict about brands
        plan = plan_batch(raws, event_type, WINDOWS, NOW.timestamp(), known=known)  # type: ignore[arg-type]
        # Each event lands in exactly one of the three places, never none, never two.
        assert plan.events == expected
        assert len(plan.counted) + len(plan.rejected) + len(plan.too_late) == expected
        for message, invalid in plan.rejected:
            assert invalid.reason in INVALID_REASONS
            assert invalid.detail
            assert message.value is not None or messages[message.offset] is None
        if known:
            assert all(e.brand in known for e in plan.counted)


# No deadline: tests do not time anything, and the first Chinese text loads a model (seconds).
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    st.sampled_from(["mention", "interaction"]),
)
def test_arbitrary_bytes_are_each_counted_or_dead_lettered(
    messages: list[bytes], kind: str
) -> None:
    accounted(messages, kind)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(json_values, min_size=1, max_size=5), st.sampled_from(["mention", "interaction"]))
def test_arbitrary_json_is_each_counted_or_dead_lettered(values: list[Any], kind: str) -> None:
    accounted([json.dumps(v).encode() for v in values], kind)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(mentions, min_size=1, max_size=6), st.booleans())
def test_almost_valid_mentions_alone_or_in_envelopes(events: list[dict], envelope: bool) -> None:
    values = [json.dumps(events).encode()] if envelope else [json.dumps(e).encode() for e in events]
    accounted(values, "mention")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(interactions, min_size=1, max_size=6), st.booleans())
def test_almost_valid_interactions_alone_or_in_envelopes(
    events: list[dict], envelope: bool
) -> None:
    values = [json.dumps(events).encode()] if envelope else [json.dumps(e).encode() for e in events]
    accounted(values, "interaction")


def test_json_nested_thousands_deep_is_dead_lettered_not_a_crash() -> None:
    # Python's json module raises RecursionError on such input; one hostile message must not
    # stop the worker.
    for raw in (
        b"[" * 50_000 + b"]" * 50_000,
        b"[" + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"]",
    ):
        [decoded] = decode_message(raw, Mention)
        assert (decoded.event.reason, decoded.event.detail) == (
            "not_json",
            "JSON nested too deeply",
        )  # type: ignore[union-attr]
    [decoded] = decode_message(b'{"a":' * 40_000 + b"1" + b"}" * 40_000, Mention)
    assert decoded.event.reason == "not_json"  # type: ignore[union-attr]
