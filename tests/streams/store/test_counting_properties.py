"""Property-based, down to Redis: random events whose ids, content ids, campaigns, authors and
texts draw on all of Unicode and on every delimiter, with numbers at the edges (NaN, infinities,
5,000-digit integers, the bounds and just past them), alone and in envelopes, go through the
batch planner and the real Redis script. Every event is counted, too late or dead-lettered,
exactly once; nothing the store is given fails; and what Redis then holds equals a plain
in-memory model of the counting rules (dedupe per type and minute, the author rate limit,
+1 and amounts per field, per campaign and content item, distinct members, newest gauges,
customer-care matching), and equals the product's own in-memory store (MemoryCounts)."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from streams.batch import RawMessage, plan_batch
from streams.counted import AppliedBatch, CountedEvent
from streams.decoding import INVALID_REASONS
from streams.events import INTERACTION_KINDS
from streams.store.memory_store import MemoryCounts
from streams.store.redis_store import AsyncCountStore, read_dimension_windows, read_windows
from streams.windows import DEDUPE_BUCKET, WindowPlan, bucket_start

pytestmark = pytest.mark.stack

PLAN = WindowPlan.of([60, 300, 3600, 86400], allowed_lateness=600, max_future=300)
DAY = 86400
AUTHOR_LIMIT = 3
KNOWN = {"acme": frozenset({"x", "instagram"}), "globex": frozenset({"x", "facebook"})}

# Characters that mean something to some encoding: JSON, CSV, URLs, Redis keys, Lua patterns.
DELIMITERS = [
    *",=|:;%{}[]()\"'\\/?&#@*+-.$^ \t\n\r\x00\x7f",
    "\u2028",
    "é",
    "汉",
    "😀",
    "\ud800",
    "\udfff",
]
hostile_text = st.text(
    alphabet=st.sampled_from(DELIMITERS) | st.characters(exclude_categories=()), max_size=12
)
ids = st.one_of(
    hostile_text,
    st.sampled_from(["https://shop.example/p?ref=newsletter", "promo?id=42", "a,b=c", "x|y"]),
    st.integers(0, 30).map(lambda n: f"id-{n}"),  # repeats: redeliveries and shared ids
)
# Raw JSON number texts at the edges, substituted into the message as they are.
numbers = st.sampled_from(
    [
        "0",
        "1",
        "12.5",
        "0.1",
        "1e12",
        "1000000000000",
        "1000000000001",
        "1e308",
        "-1",
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 5000,
        "1e-320",
        "99999999999.99",
    ]
)
offsets = st.integers(-700, 400)  # seconds from now: too late, on time, and too far ahead


@st.composite
def mention(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": draw(ids),
        "ts": draw(offsets),
        "platform": draw(st.sampled_from(["x", "instagram", "facebook", "tiktok"])),
        "brand": draw(st.sampled_from(["acme", "globex", "initech"])),
        "author": draw(st.sampled_from(["@jo", "@al", "a,b=c", "<!channel>"]) | hostile_text),
        "text": draw(hostile_text),
    }
    if draw(st.booleans()):
        event["sentiment"] = draw(
            st.sampled_from(["positive", "negative", "neutral"]) | numbers.map(RawNumber)
        )
    if draw(st.booleans()):
        event["author_followers"] = RawNumber(draw(numbers))
    if draw(st.booleans()):
        event["url"] = draw(hostile_text)
    care = draw(st.sampled_from(["none", "inbound", "reply"]))
    conversation = draw(st.sampled_from(["q1", "q2", "q,3", "q|4"]))
    if care == "inbound":
        event.update(needs_reply=True, conversation_id=conversation)
    elif care == "reply":
        event.update(from_brand=True, reply_to=conversation)
    if draw(st.integers(0, 9)) == 0:
        event["is_bot"] = True
    return event


@st.composite
def interaction(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(INTERACTION_KINDS))
    event: dict[str, Any] = {
        "id": draw(ids),
        "ts": draw(offsets),
        "platform": draw(st.sampled_from(["x", "instagram", "facebook"])),
        "brand": draw(st.sampled_from(["acme", "globex"])),
        "kind": kind,
        "content_id": draw(ids),
        "user_id": draw(st.sampled_from(["u1", "u2", "u,3"]) | hostile_text),
    }
    if draw(st.booleans()):
        event["campaign"] = draw(ids)
    if kind in ("nps_response", "csat_response"):
        event["value"] = draw(st.integers(-1, 11))
    elif draw(st.integers(0, 3)) > 0:
        event["value"] = RawNumber(draw(numbers))
    return event


@dataclass(frozen=True)
class RawNumber:
    """A JSON number written as it is (json.dumps cannot write NaN as JSON or 10**5000)."""

    text: str


def encode(value: Any) -> str:
    """JSON text with RawNumber placeholders replaced by their raw text, and lone surrogates as
    \\u escapes (as a careless producer writes them)."""
    marks: dict[str, str] = {}

    def mark(obj: Any) -> Any:
        if isinstance(obj, RawNumber):
            token = f"__n{len(marks)}__"
            marks[token] = obj.text
            return token
        if isinstance(obj, dict):
            return {k: mark(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [mark(v) for v in obj]
        return obj

    text = json.dumps(mark(value), ensure_ascii=True)
    for token, raw in marks.items():
        text = text.replace(f'"{token}"', raw)
    return text


def current_time() -> float:
    """Now, read per test: keys expire relative to their buckets, so a time read at import would
    be many minutes old when a long suite reaches these tests, and the keys born expired."""
    return datetime.now(UTC).replace(microsecond=0).timestamp()


def with_time(event: dict[str, Any], now: float) -> dict[str, Any]:
    return {**event, "ts": datetime.fromtimestamp(now + event["ts"], UTC).isoformat()}


def messages(
    events: list[dict[str, Any]], envelope: bool, topic: str, now: float
) -> list[RawMessage]:
    timed = [with_time(e, now) for e in events]
    if envelope:
        return [RawMessage(topic, 0, 0, b"k", encode(timed).encode())]
    return [RawMessage(topic, 0, i, b"k", encode(e).encode()) for i, e in enumerate(timed)]


@dataclass
class Model:
    """The counting rules, plainly: what a store holds after these planned events."""

    fields: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    dimensions: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    members: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    gauges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    seen: set[tuple[str, str, int, str]] = field(default_factory=set)
    care_seen: set[tuple[str, int, str]] = field(default_factory=set)
    rates: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    waiting: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    statuses: list[str] = field(default_factory=list)

    def apply(self, event: CountedEvent) -> None:
        minute = bucket_start(event.ts, DEDUPE_BUCKET)
        key = (event.brand, event.event_type, minute, event.event_id)
        if key in self.seen:
            self.statuses.append("duplicate")
        else:
            self.seen.add(key)
            adds, status = event.fields, "counted"
            if event.author is not None:
                self.rates[(event.brand, minute, event.author)] += 1
                if self.rates[(event.brand, minute, event.author)] > AUTHOR_LIMIT:
                    adds, status = event.filtered_fields, "filtered"
            for name, amount in adds:
                self.fields[(event.brand, name)] += 1 if amount is None else amount
            if status == "counted":
                for name, amount in event.dimension_fields:
                    self.dimensions[(event.brand, name)] += 1 if amount is None else amount
                if event.unique:
                    self.members[(event.brand, event.unique[0])].add(event.unique[1])
            self.statuses.append(status)
        if event.gauge:
            name, value = event.gauge
            newest = self.gauges.get((event.brand, name))
            if newest is None or event.ts >= newest[0]:
                self.gauges[(event.brand, name)] = (event.ts, value)
        if event.care and (event.brand, minute, event.event_id) not in self.care_seen:
            self.care_seen.add((event.brand, minute, event.event_id))
            kind, thread = event.care
            waiting = self.waiting[(event.brand, event.platform)]
            if kind == "inbound":
                waiting.setdefault(thread, event.ts)
            elif thread in waiting:
                del waiting[thread]
                self.fields[(event.brand, f"responses|{event.platform}")] += 1


def expected_windows(model: Model, brand: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for (b, name), total in model.fields.items():
        if b == brand and not tiny(total):
            counter, _, platform = name.partition("|")
            out[(counter, platform)] = total
    for (b, name), (_, value) in model.gauges.items():
        if b == brand:
            counter, _, platform = name.partition("|")
            out[(counter, platform)] = value
    return out


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def tiny(amount: float) -> bool:
    # Redis keeps float sums to 17 decimal places: an amount of 1e-320 adds nothing there.
    return abs(amount) < 1e-9


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def apply_batches(
    stack: Settings, keys: RedisKeys, *batches: list[CountedEvent], author_limit: int = 0
) -> list[AppliedBatch]:
    """Apply the batches in order through the real count store; what each changed."""

    async def run() -> list[AppliedBatch]:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            store = AsyncCountStore(client, keys, PLAN, author_limit)
            return [await store.apply(batch) for batch in batches]
        finally:
            await client.aclose()

    return asyncio.run(run())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(mention(), min_size=1, max_size=25),
    st.lists(interaction(), min_size=1, max_size=25),
    st.booleans(),
    st.booleans(),
    st.integers(1, 30),
)
def test_random_events_count_in_redis_exactly_as_the_model_says(
    stack: Settings,
    mentions: list[dict[str, Any]],
    interactions: list[dict[str, Any]],
    envelope: bool,
    strict: bool,
    chunk: int,
) -> None:
    now = current_time()
    prefix = f"tprop{uuid.uuid4().hex[:10]}"
    keys = RedisKeys(prefix)
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    known = KNOWN if strict else None
    plans = [
        (
            plan_batch(
                messages(events, envelope, kind, now),
                kind,  # type: ignore[arg-type]
                PLAN,
                now,
                limit_author_rate=True,
                known=known,
            ),
            events,
        )
        for kind, events in (("mention", mentions), ("interaction", interactions))
    ]
    for plan, events in plans:
        # Each event is in exactly one place: counted, too late or dead-lettered.
        assert plan.events == len(events)
        assert len(plan.counted) + len(plan.rejected) + len(plan.too_late) == len(events)
        assert {r.reason for _, r in plan.rejected} <= set(INVALID_REASONS)
        assert all(r.reason != "processing_error" for _, r in plan.rejected)
        if strict:
            assert all(e.platform in KNOWN[e.brand] for e in plan.counted)
    counted = [e for plan, _ in plans for e in plan.counted]

    try:
        chunks = [counted[i : i + chunk] for i in range(0, len(counted), chunk)]
        applied = apply_batches(stack, keys, *chunks, author_limit=AUTHOR_LIMIT)
        model = Model()
        memory = MemoryCounts(PLAN.tiers, AUTHOR_LIMIT)
        memory_status = [memory.count(e) for e in counted]
        for event in counted:
            model.apply(event)
        # Nothing the store was given failed, and each event's fate is the model's.
        assert [f for batch in applied for f in batch.failed] == []
        fate = {id(e): "counted" for batch in applied for e in batch.counted}
        fate.update({id(e): "filtered" for batch in applied for e in batch.filtered})
        assert [fate.get(id(e), "duplicate") for e in counted] == model.statuses
        assert memory_status == model.statuses
        # Read at the end of the allowed future, so every on-time bucket is in the window.
        reads = read_windows(sync, keys, PLAN, ["acme", "globex", "initech"], now + 300)
        for brand in ("acme", "globex", "initech"):
            got = reads[(brand, DAY)]
            want = expected_windows(model, brand)
            for window_name, total in want.items():
                assert close(got.get(window_name, 0), total), (brand, window_name, total)
            for (counter, platform), n in got.items():
                if counter in ("unique_authors", "reach") or platform == "all":
                    continue
                if counter.startswith(("response_time", "unanswered", "oldest_unanswered")):
                    continue
                assert (counter, platform) in want or tiny(n), (brand, counter, platform, n)
            # Distinct counts are HyperLogLogs (standard error 0.81%).
            for (b, name), members in model.members.items():
                if b == brand:
                    counter, _, platform = name.partition("|")
                    assert abs(got[(counter, platform)] - len(members)) <= max(
                        1, 0.03 * len(members)
                    )
            for dimension in ("content", "campaign"):
                stored = read_dimension_windows(sync, keys, PLAN, brand, dimension, now + 300)
                wanted = {}
                for (b, name), n in model.dimensions.items():
                    counter, _, member = name.partition("|")
                    if b == brand and member.startswith(f"{dimension}:") and not tiny(n):
                        wanted[(counter, member.removeprefix(f"{dimension}:"))] = n
                have = {k: v for k, v in stored[DAY].items() if not tiny(v)}
                assert set(have) == set(wanted), (brand, dimension)
                assert all(close(have[k], wanted[k]) for k in wanted)
            memory_window = memory.window(brand, DAY, PLAN.tier(DAY), now + 300)
            for window_name, total in want.items():
                if window_name[0] != "responses":  # MemoryCounts does not replay care matching
                    assert close(memory_window.get(window_name, 0), total), (brand, window_name)
    finally:
        delete_prefix(sync, prefix)
        sync.close()


def test_a_content_id_with_the_old_delimiters_counts_under_its_true_name(stack: Settings) -> None:
    """The issue's own case: 200 likes in one envelope, one with a URL content id; and a like of
    `promo?id=42`, which once counted as 42 likes of `promo?id`."""
    now = current_time()
    prefix = f"tprop{uuid.uuid4().hex[:10]}"
    keys = RedisKeys(prefix)
    at = datetime.fromtimestamp(now - 5, UTC).isoformat()
    likes = [
        {
            "id": f"like-{n}",
            "ts": at,
            "platform": "x",
            "brand": "acme",
            "kind": "like",
            "content_id": "https://shop.example/p?ref=newsletter" if n == 7 else "post-1",
            "user_id": f"u{n}",
            "campaign": "spring=26,eu",
        }
        for n in range(200)
    ]
    likes.append({**likes[0], "id": "like-promo", "content_id": "promo?id=42"})
    plan = plan_batch(
        [RawMessage("i", 0, 0, b"acme", json.dumps(likes).encode())],
        "interaction",
        PLAN,
        now,
    )
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)

    try:
        [applied] = apply_batches(stack, keys, plan.counted)
        assert (len(applied.counted), applied.failed) == (201, [])
        content = read_dimension_windows(sync, keys, PLAN, "acme", "content", now)[300]
        assert content == {
            ("likes", "post-1"): 199,
            ("likes", "https://shop.example/p?ref=newsletter"): 1,
            ("likes", "promo?id=42"): 1,
        }
        campaigns = read_dimension_windows(sync, keys, PLAN, "acme", "campaign", now)[300]
        assert campaigns == {("likes", "spring=26,eu"): 201}
        assert read_windows(sync, keys, PLAN, ["acme"], now)[("acme", 300)][("likes", "x")] == 201
    finally:
        delete_prefix(sync, prefix)
        sync.close()


def test_a_mention_and_an_interaction_may_share_an_id(stack: Settings) -> None:
    now = current_time()
    prefix = f"tprop{uuid.uuid4().hex[:10]}"
    keys = RedisKeys(prefix)
    at = datetime.fromtimestamp(now - 5, UTC).isoformat()
    shared = "https://x.com/acme/status/1"
    mention_event = {
        "id": shared,
        "ts": at,
        "platform": "x",
        "brand": "acme",
        "author": "@jo",
        "text": "nice",
        "sentiment": "positive",
    }
    like = {
        "id": shared,
        "ts": at,
        "platform": "x",
        "brand": "acme",
        "kind": "like",
        "content_id": "c",
        "user_id": "u",
    }
    mentions = plan_batch(
        [RawMessage("m", 0, 0, b"acme", json.dumps(mention_event).encode())], "mention", PLAN, now
    )
    likes = plan_batch(
        [RawMessage("i", 0, 0, b"acme", json.dumps(like).encode())], "interaction", PLAN, now
    )
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)

    try:
        first, second, again = apply_batches(
            stack, keys, mentions.counted, likes.counted, [*mentions.counted, *likes.counted]
        )
        assert [len(first.counted), len(second.counted), len(again.counted)] == [1, 1, 0]
        counts = read_windows(sync, keys, PLAN, ["acme"], now)[("acme", 300)]
        assert (counts[("mentions", "x")], counts[("likes", "x")]) == (1, 1)
    finally:
        delete_prefix(sync, prefix)
        sync.close()


def test_a_refused_call_is_narrowed_down_to_the_event_at_fault(stack: Settings) -> None:
    """An event the script cannot take (here an id that is not valid Unicode, which the planner
    never lets through but a caller could) fails alone; the rest of its brand's batch counts."""
    now = current_time()
    prefix = f"tprop{uuid.uuid4().hex[:10]}"
    keys = RedisKeys(prefix)
    at = now - 5
    names = [f"m-{n}" for n in range(9)]
    names.insert(3, "bad-\ud800")  # the bad one in the middle
    events = [
        CountedEvent("acme", name, at, [("mentions|x", None)], "mention", platform="x")
        for name in names
    ]
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)

    try:
        [applied] = apply_batches(stack, keys, events)
        assert sorted(e.event_id for e in applied.counted) == [f"m-{n}" for n in range(9)]
        assert [(f.event.event_id, f.error) for f in applied.failed] == [
            (
                "bad-\ud800",
                "ValueError: id 'bad-\\ud800' is not valid Unicode: surrogates not allowed",
            )
        ]
        counts = read_windows(sync, keys, PLAN, ["acme"], now)[("acme", 300)]
        assert counts[("mentions", "x")] == 9
    finally:
        delete_prefix(sync, prefix)
        sync.close()


def test_the_script_refuses_a_key_of_the_wrong_type_before_writing(stack: Settings) -> None:
    """A key holding another type (a corrupted keyspace) fails the call before its first write:
    no dedupe entry, no count; the events come back failed, naming the key."""
    now = current_time()
    prefix = f"tprop{uuid.uuid4().hex[:10]}"
    keys = RedisKeys(prefix)
    at = now - 5
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    finest = keys.bucket("acme", 10, bucket_start(at, 10))
    sync.set(finest, "not a hash")
    events = [
        CountedEvent("acme", "m-1", at, [("mentions|x", None)], "mention", platform="x"),
        CountedEvent("globex", "m-2", at, [("mentions|x", None)], "mention", platform="x"),
    ]

    try:
        [applied] = apply_batches(stack, keys, events)
        assert [e.event_id for e in applied.counted] == ["m-2"]
        assert [(f.event.event_id, f.error) for f in applied.failed] == [
            (
                "m-1",
                f"ResponseError: socialpulse count script: {finest} holds a string, not a hash",
            )
        ]
        minute = bucket_start(at, DEDUPE_BUCKET)
        assert sync.exists(keys.seen("acme", minute, "mention")) == 0  # nothing written
        assert sync.get(finest) == "not a hash"
    finally:
        delete_prefix(sync, prefix)
        sync.close()
