"""The count store contract (streams.store.base), one set of exact-count specifications run
against both stores: Redis (the worker's, on the real stack) and memory (the backtest's). The
events go through the real batch planner; the expected numbers are worked out by hand."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from socialpulse.core.redis_keys import RedisKeys
from streams.batch import RawMessage, plan_batch
from streams.counted import AppliedBatch, CountedEvent
from streams.counters import WindowCounts
from streams.events import MetricSnapshot
from streams.snapshots import Piece
from streams.store.base import CountStore, WindowReader
from streams.store.count_script import APPLY_BATCH, SnapshotWrite, brand_call
from streams.store.memory_store import MemoryCounts
from streams.store.redis_store import (
    AsyncCountStore,
    RedisWindows,
    mark_tiers_written,
    read_windows,
)
from streams.windows import WindowPlan

PLAN = WindowPlan.of([300, 3600], allowed_lateness=600, max_future=300)
TRACK_FOR = 7 * 86400
AUTHOR_LIMIT = 3


@dataclass
class Backend:
    """One store under the contract, and how to read it back."""

    store: CountStore
    reader: WindowReader

    def apply(self, *batches: Sequence[CountedEvent]) -> list[AppliedBatch]:
        async def run() -> list[AppliedBatch]:
            return [await self.store.apply(batch) for batch in batches]

        return asyncio.run(run())

    def window(self, brand: str, window: int, now: float) -> WindowCounts:
        return self.reader.windows(PLAN, [brand], now)[(brand, window)]

    def snapshots(self, *batches: Sequence[dict[str, Any]], now: float) -> list[list[str]]:
        """Apply batches of snapshots (as JSON objects) in order; each one's outcomes."""

        async def run() -> list[list[str]]:
            done = []
            for batch in batches:
                parsed = [MetricSnapshot.model_validate(item) for item in batch]
                steps = await self.store.apply_snapshots(parsed, PLAN, TRACK_FOR, now)  # type: ignore[attr-defined]
                done.append([getattr(s, "outcome", "failed") for s in steps])
            return done

        return asyncio.run(run())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.stack)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        memory = MemoryCounts(PLAN.tiers, AUTHOR_LIMIT)
        yield Backend(memory, memory)
        return
    stack = request.getfixturevalue("stack")
    keys = RedisKeys(f"tcontract{uuid.uuid4().hex[:10]}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    try:
        # The store's async client is bound to one event loop; Backend.apply runs a fresh
        # loop per call, so each call gets a store with a client of its own.
        yield Backend(_PerLoopRedisStore(stack.pipeline.redis.url, keys), RedisWindows(sync, keys))
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


class _PerLoopRedisStore:
    """AsyncCountStore with a client opened and closed within each call."""

    def __init__(self, url: str, keys: RedisKeys):
        self.url, self.keys = url, keys

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        client = aredis.Redis.from_url(self.url, decode_responses=True)
        try:
            return await AsyncCountStore(client, self.keys, PLAN, AUTHOR_LIMIT).apply(events)
        finally:
            await client.aclose()

    async def apply_snapshots(
        self, snapshots: Sequence[MetricSnapshot], plan: WindowPlan, track_for: int, now: float
    ) -> list[Any]:
        client = aredis.Redis.from_url(self.url, decode_responses=True)
        try:
            store = AsyncCountStore(client, self.keys, plan, AUTHOR_LIMIT)
            return await store.apply_snapshots(snapshots, track_for, now)
        finally:
            await client.aclose()


def planned(kind: str, events: list[dict[str, Any]], now: float) -> list[CountedEvent]:
    """The events as the worker plans them (each one Kafka message)."""
    messages = [
        RawMessage(kind, 0, offset, b"acme", json.dumps(event).encode())
        for offset, event in enumerate(events)
    ]
    plan = plan_batch(messages, kind, PLAN, now, limit_author_rate=True)  # type: ignore[arg-type]
    assert plan.rejected == [] and plan.too_late == []
    return plan.counted


def at(now: float, ago: float) -> str:
    return datetime.fromtimestamp(now - ago, UTC).isoformat()


def mention(now: float, id: str, sentiment: str, author: str = "@jo", ago: float = 5) -> dict:
    return {
        "id": id,
        "ts": at(now, ago),
        "platform": "x",
        "brand": "acme",
        "author": author,
        "text": "a post",
        "sentiment": sentiment,
    }


def interaction(
    now: float, id: str, kind: str, user: str = "u1", value: float | None = None, ago: float = 5
) -> dict:
    event: dict[str, Any] = {
        "id": id,
        "ts": at(now, ago),
        "platform": "x",
        "brand": "acme",
        "kind": kind,
        "content_id": "https://shop.example/p?ref=newsletter",
        "user_id": user,
    }
    if value is not None:
        event["value"] = value
    return event


def fresh_now() -> float:
    # Mid-minute, so events a few seconds old share the current minute's buckets.
    now = datetime.now(UTC).timestamp()
    return now - now % 60 + 30


def test_a_redelivered_event_counts_once(backend: Backend) -> None:
    now = fresh_now()
    first = planned(
        "mention", [mention(now, "m1", "negative"), mention(now, "m2", "positive")], now
    )
    again = planned("mention", [mention(now, "m1", "negative")], now)
    applied, redelivered = backend.apply(first, again)
    assert (len(applied.counted), len(redelivered.counted), redelivered.filtered) == (2, 0, [])
    counts = backend.window("acme", 300, now)
    assert counts[("mentions", "x")] == 2
    assert counts[("mentions_negative", "x")] == 1
    assert counts[("mentions_positive", "x")] == 1


def test_a_mention_and_an_interaction_may_share_an_id(backend: Backend) -> None:
    now = fresh_now()
    [applied_mention, applied_like] = backend.apply(
        planned("mention", [mention(now, "post-1", "neutral")], now),
        planned("interaction", [interaction(now, "post-1", "like")], now),
    )
    assert (len(applied_mention.counted), len(applied_like.counted)) == (1, 1)
    counts = backend.window("acme", 300, now)
    assert (counts[("mentions", "x")], counts[("likes", "x")]) == (1, 1)


def test_an_author_over_the_rate_is_filtered_not_counted(backend: Backend) -> None:
    now = fresh_now()
    five = [mention(now, f"m{n}", "negative", author="@loud") for n in range(5)]
    [applied] = backend.apply(planned("mention", five, now))
    assert (len(applied.counted), len(applied.filtered)) == (AUTHOR_LIMIT, 5 - AUTHOR_LIMIT)
    counts = backend.window("acme", 300, now)
    assert counts[("mentions", "x")] == 3
    assert counts[("mentions_negative", "x")] == 3
    assert counts[("filtered", "x")] == 2


def test_amounts_add_up_and_kinds_count_one_each(backend: Backend) -> None:
    now = fresh_now()
    events = [
        interaction(now, "o1", "order", value=45.5),
        interaction(now, "o2", "order", value=12),
        interaction(now, "l1", "like"),
    ]
    backend.apply(planned("interaction", events, now))
    counts = backend.window("acme", 300, now)
    assert counts[("orders", "x")] == 2
    assert counts[("revenue", "x")] == 57.5
    assert counts[("likes", "x")] == 1


def test_an_event_standing_for_many_counts_them_once_by_id(backend: Backend) -> None:
    now = fresh_now()
    # A platform's 200 likes of one post (its URL as the id), one more like, and 5,000
    # impressions with no viewer behind them.
    likes = {**interaction(now, "likes-200", "like", user="platform"), "count": 200}
    seen = {**interaction(now, "views-5000", "impression", user="platform"), "count": 5000}
    batch = [likes, interaction(now, "l1", "like"), seen]
    backend.apply(planned("interaction", batch, now), planned("interaction", [likes], now))
    counts = backend.window("acme", 300, now)
    assert counts[("likes", "x")] == 201  # the redelivered 200 count once
    assert counts[("impressions", "x")] == 5000
    assert (counts[("reach", "x")], counts[("reach", "all")]) == (0, 0)  # no viewer is reach


def test_distinct_viewers_count_once(backend: Backend) -> None:
    now = fresh_now()
    seen = [interaction(now, f"i{n}", "impression", user=u) for n, u in enumerate("aba")]
    backend.apply(planned("interaction", seen, now))
    counts = backend.window("acme", 300, now)
    assert counts[("impressions", "x")] == 3
    assert (counts[("reach", "x")], counts[("reach", "all")]) == (2, 2)


def test_the_newest_gauge_wins_whatever_the_order(backend: Backend) -> None:
    now = fresh_now()
    newer = interaction(now, "f1", "followers", value=100, ago=20)
    older = interaction(now, "f2", "followers", value=90, ago=25)
    backend.apply(planned("interaction", [newer], now), planned("interaction", [older], now))
    assert backend.window("acme", 300, now)[("followers", "x")] == 100


def test_a_window_holds_its_own_buckets_only(backend: Backend) -> None:
    now = fresh_now()
    backend.apply(planned("mention", [mention(now, "old", "neutral", ago=480)], now))
    assert backend.window("acme", 3600, now)[("mentions", "x")] == 1
    assert ("mentions", "x") not in backend.window("acme", 300, now)


def snapshot(now: float, ago: float, published_ago: float | None = None, **metrics: float) -> dict:
    """A snapshot of one post (its totals ``ago`` seconds before ``now``)."""
    item: dict[str, Any] = {
        "ts": at(now, ago),
        "platform": "instagram",
        "brand": "acme",
        "object_id": "https://www.instagram.com/p/C0ffee123/",
        "campaign": "winter",
        "metrics": metrics,
    }
    if published_ago is not None:
        item["published_at"] = at(now, published_ago)
    return item


def totals(counts: WindowCounts, *names: str) -> dict[str, float]:
    return {name: counts.get((name, "instagram"), 0) for name in names}


def test_snapshots_count_their_growth_once_whatever_the_order(backend: Backend) -> None:
    now = fresh_now()
    published = snapshot(now, 1500, published_ago=1800, impressions=1200, reach=900, likes=30)
    later = snapshot(now, 600, impressions=2000, reach=1400, likes=45, spend=12.5)
    older = snapshot(now, 900, impressions=1500, reach=1100, likes=40)  # arrives late
    outcomes = backend.snapshots([published], [later, later], [older], now=now)
    assert outcomes == [["counted"], ["counted", "unchanged"], ["out_of_order"]]
    # From zero at publication: 1,200 then +800 impressions; likes 30 then +15; spend from
    # zero as it was not reported before (the object counts from publication).
    hour = backend.window("acme", 3600, now)
    assert totals(hour, "impressions", "reported_reach", "likes", "spend") == {
        "impressions": 2000,
        "reported_reach": 1400,
        "likes": 45,
        "spend": 12.5,
    }


def test_a_first_snapshot_without_publication_time_is_a_starting_point(backend: Backend) -> None:
    now = fresh_now()
    outcomes = backend.snapshots(
        [snapshot(now, 1200, impressions=50_000, likes=700)],
        [snapshot(now, 600, impressions=50_900, likes=712)],
        now=now,
    )
    assert outcomes == [["started"], ["counted"]]
    hour = backend.window("acme", 3600, now)
    assert totals(hour, "impressions", "likes", "snapshot_corrections") == {
        "impressions": 900,
        "likes": 12,
        "snapshot_corrections": 0,
    }


def test_a_total_that_goes_down_is_a_correction_never_a_negative_count(backend: Backend) -> None:
    now = fresh_now()
    outcomes = backend.snapshots(
        [snapshot(now, 1500, published_ago=1600, likes=100, impressions=1000)],
        [snapshot(now, 1200, likes=97, impressions=1100)],  # 3 unlikes
        [snapshot(now, 900, likes=99, impressions=1100)],  # still below the 100 seen
        [snapshot(now, 600, likes=104, impressions=1150)],
        now=now,
    )
    assert outcomes == [["counted"], ["counted"], ["advanced"], ["counted"]]
    hour = backend.window("acme", 3600, now)
    # Growth past the highest total only: the increments add up to the highest total seen.
    assert totals(hour, "likes", "impressions", "snapshot_corrections") == {
        "likes": 104,
        "impressions": 1150,
        "snapshot_corrections": 1,
    }


def test_growth_is_spread_over_the_time_between_snapshots(backend: Backend) -> None:
    now = fresh_now()
    # 600 impressions between 40 and 10 minutes ago: evenly, so 20 a minute.
    backend.snapshots(
        [snapshot(now, 2400, impressions=10_000)], [snapshot(now, 600, impressions=10_600)], now=now
    )
    five = backend.window("acme", 300, now)
    hour = backend.window("acme", 3600, now)
    assert totals(hour, "impressions") == {"impressions": 600}
    # The last five minutes hold none of it (it all happened before the newest snapshot).
    assert totals(five, "impressions") == {"impressions": 0}


def test_an_object_past_its_tracking_age_is_not_counted(backend: Backend) -> None:
    now = fresh_now()
    old = TRACK_FOR + 3600
    outcomes = backend.snapshots([snapshot(now, 600, published_ago=old, impressions=10)], now=now)
    assert outcomes == [["untracked"]]
    assert totals(backend.window("acme", 3600, now), "impressions") == {"impressions": 0}


@pytest.mark.stack
def test_a_snapshot_written_over_a_changed_state_is_refused_whole(stack: Any) -> None:
    # Two workers may briefly hold one brand in a rebalance: a write computed from a state
    # another writer has since changed must write nothing (then it is read again).
    keys = RedisKeys(f"tcas{uuid.uuid4().hex[:10]}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    try:
        now = fresh_now()
        state_key = keys.snapshot_object("acme", "instagram", "post-1")
        sync.hset(state_key, mapping={"v": 2, "s": "{}"})
        piece = Piece(int(now), (("likes|instagram", 5.0),), ())
        stale = SnapshotWrite(state_key, 1, '{"new": true}', int(now) + 3600, [piece])
        fresh = SnapshotWrite(state_key, 2, '{"new": true}', int(now) + 3600, [piece])
        script = sync.register_script(APPLY_BATCH)
        for write, expected in ((stale, [3]), (fresh, [1])):
            call_keys, args = brand_call(keys, PLAN, "acme", [], 0, now, snapshots=[write])
            assert script(keys=call_keys, args=args) == expected
        reader = RedisWindows(sync, keys)
        assert reader.windows(PLAN, ["acme"], now)[("acme", 300)][("likes", "instagram")] == 5
        assert sync.hgetall(state_key) == {"v": "3", "s": '{"new": true}'}
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


@pytest.mark.stack
def test_running_totals_add_every_counted_increment_once(stack: Any) -> None:
    # What /metrics exports as socialpulse_counted_<counter>_total: written by the same call as
    # the buckets, so redeliveries add nothing there either.
    keys = RedisKeys(f"ttot{uuid.uuid4().hex[:10]}")
    url = stack.pipeline.redis.url
    sync = redis.Redis.from_url(url, decode_responses=True)
    try:
        now = fresh_now()
        store = _PerLoopRedisStore(url, keys)
        likes = planned(
            "interaction", [interaction(now, "i1", "like"), interaction(now, "i2", "like")], now
        )
        order = planned("interaction", [interaction(now, "o1", "order", value=12.5)], now)
        asyncio.run(store.apply([*likes, *order]))
        asyncio.run(store.apply(likes))  # delivered again
        post = MetricSnapshot.model_validate(snapshot(now, 600, published_ago=900, impressions=300))
        asyncio.run(store.apply_snapshots([post, post], PLAN, TRACK_FOR, now))
        assert sync.hgetall(keys.totals("acme")) == {
            "likes|x": "2",
            "orders|x": "1",
            "revenue|x": "12.5",
            "impressions|instagram": "300",
        }
        assert sync.ttl(keys.totals("acme")) > 0
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


@pytest.mark.stack
def test_amounts_are_summed_exactly_in_their_usual_forms_and_added_alone_otherwise(
    scratch: tuple[RedisKeys, redis.Redis],
) -> None:
    # The script sums amounts of up to 6 decimals as integers of millionths and adds each sum
    # once; others (an exponent, 7 decimals) go in one by one. Either way the totals are the
    # exact decimal sums.
    keys, sync = scratch
    now = fresh_now()
    amounts: dict[str, list[float]] = {
        "revenue|x": [0.1] * 1000,  # 100 exactly
        "spend|x": [19.99, -19.99, 0.01],  # a refund, then a cent: 0.01
        "revenue|tiktok": [1e-07, 2.5],  # an exponent and 7 decimals: added on its own
        "spend|tiktok": [999999999.999999] * 20,  # past 2^53 millionths: more sums
        "revenue|youtube": [5.0, -5.0],  # nets to 0: the field is still there
        "revenue|weibo": [12, -0.0, 0.0001],  # an int, a negative zero, a decimal
        # At or over 2^53 millionths (~9.007e9), each on its own, and below, summed:
        "revenue|douyin": [200000000000.01, 600000000001.0, 9007199254.740992, 9007199254.0],
    }
    events = [
        CountedEvent("acme", f"{field}-{i}", now - 5, ((field, amount),), "interaction")
        for field, values in amounts.items()
        for i, amount in enumerate(values)
    ]
    call_keys, args = brand_call(keys, PLAN, "acme", events, 0, now)
    script = sync.register_script(APPLY_BATCH)
    done = f"done-{keys.prefix}"
    with sync.monitor() as monitor:
        assert script(keys=call_keys, args=args) == [1] * len(events)
        sync.echo(done)
        seen = []
        while done not in (command := monitor.next_command()["command"]):
            if command.startswith("HINCRBYFLOAT") and keys.prefix in command:
                seen.append(tuple(command.split(" ")[1:3]))
    # One HINCRBYFLOAT per sum and per amount without exact millionths, per key written,
    # where there were 1,000 for 0.1 alone.
    calls = {key for key, _ in seen}
    assert keys.totals("acme") in calls and len(calls) == len(PLAN.tiers) + 1
    for key in calls:
        assert Counter(field for k, field in seen if k == key) == {
            "revenue|x": 1,
            "spend|x": 1,
            "revenue|tiktok": 2,
            "spend|tiktok": 3,  # 9 amounts of ~10^15 millionths a sum below 2^53
            "revenue|youtube": 1,
            "revenue|weibo": 1,
            "revenue|douyin": 4,  # three on their own (the last three), one sum
        }, key
    totals = sync.hgetall(keys.totals("acme"))
    # Sums past 2^53 millionths meet in Redis' long double, which holds ~19 digits:
    # the total is exact to the double a reader parses, not to the string's last digit.
    assert float(totals.pop("spend|tiktok")) == 19999999999.99998
    totals_douyin = totals.pop("revenue|douyin")
    assert totals == {
        "revenue|x": "100",
        "spend|x": "0.01",
        "revenue|tiktok": "2.5000001",
        "revenue|youtube": "0",
        "revenue|weibo": "12.0001",
    }
    # Those added on their own go through Redis' long double (~19 digits), as every amount did
    # before sums: exact to the double a reader parses.
    exact = sum(Decimal(str(a)) for a in amounts["revenue|douyin"])
    assert float(totals_douyin) == float(exact)


@pytest.mark.stack
def test_a_long_window_read_by_hours_gives_the_same_counts(stack: Any) -> None:
    # A 24h window is read from hour buckets where the workers wrote them (from tiers-since
    # on), else from its own 5-minute buckets: both give every event of the window once.
    plan = WindowPlan.of([300, 86400], allowed_lateness=600)
    keys = RedisKeys(f"thour{uuid.uuid4().hex[:10]}")
    url = stack.pipeline.redis.url
    sync = redis.Redis.from_url(url, decode_responses=True)
    try:
        now = fresh_now()
        # One event every 7 minutes over the last 30 hours: some before the window.
        events = [
            CountedEvent("acme", f"e{i}", now - i * 420, (("mentions|x", None),), "mention")
            for i in range(int(30 * 3600 / 420))
        ]

        async def count() -> None:
            client = aredis.Redis.from_url(url, decode_responses=True)
            await AsyncCountStore(client, keys, plan).apply(events)
            await client.aclose()

        asyncio.run(count())
        inside = sum(1 for e in events if e.ts > now - now % 300 + 300 - 86400)
        by_five_minutes = read_windows(sync, keys, plan, ["acme"], now)[("acme", 86400)]
        sync.hset(keys.tiers_since(), mapping={"3600": now - 2 * 86400})
        by_hours = read_windows(sync, keys, plan, ["acme"], now)[("acme", 86400)]
        assert by_five_minutes[("mentions", "x")] == by_hours[("mentions", "x")] == inside
        # Hours after the mark only: the earlier ones from their 5-minute buckets.
        sync.hset(keys.tiers_since(), mapping={"3600": now - 6 * 3600})
        assert (
            read_windows(sync, keys, plan, ["acme"], now)[("acme", 86400)][("mentions", "x")]
            == inside
        )
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


@pytest.mark.stack
def test_a_first_start_reads_coarse_tiers_from_the_beginning_an_upgrade_from_then(
    stack: Any,
) -> None:
    plan = WindowPlan.of([300, 86400], allowed_lateness=600)
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    fresh, upgraded = (RedisKeys(f"tmark{uuid.uuid4().hex[:10]}") for _ in range(2))
    try:
        mark_tiers_written(sync, fresh, plan)
        assert sync.hgetall(fresh.tiers_since()) == {"10": "0", "300": "0", "3600": "0"}
        # Keys of an earlier version: what it counted stays readable where it was counted.
        sync.set(upgraded.gauges("acme"), "1")
        before = int(time.time())
        mark_tiers_written(sync, upgraded, plan)
        marks = {int(t): int(at) for t, at in sync.hgetall(upgraded.tiers_since()).items()}
        assert sorted(marks) == [10, 300, 3600]
        for tier, at in marks.items():
            assert at % tier == 0 and before < at <= before + tier + 1
        # A later start changes no mark.
        mark_tiers_written(sync, fresh, plan)
        assert sync.hgetall(fresh.tiers_since()) == {"10": "0", "300": "0", "3600": "0"}
    finally:
        for keys in (fresh, upgraded):
            found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
            if found:
                sync.delete(*found)
        sync.close()


@pytest.mark.stack
def test_windows_read_together_at_their_own_ends_equal_each_read_alone(stack: Any) -> None:
    # The evaluation reads every rule window in one call, each ending at its own time, a bucket
    # that two windows share read once, and only what its rules need.
    keys = RedisKeys(f"tends{uuid.uuid4().hex[:10]}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    now = fresh_now()
    try:
        mentions = [
            mention(now, f"m{i}", "negative", author=f"@a{i}", ago=i * 11) for i in range(50)
        ]
        seen = [
            interaction(now, f"i{i}", "impression", user=f"u{i % 7}", ago=100) for i in range(9)
        ]

        async def count() -> None:
            client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
            store = AsyncCountStore(client, keys, PLAN, AUTHOR_LIMIT)
            await store.apply(planned("mention", mentions, now))
            await store.apply(planned("interaction", seen, now))
            await client.aclose()

        asyncio.run(count())
        ends = {300: now - 30, 3600: now - 90}  # read late, within READ_MARGIN
        alone = {
            w: read_windows(sync, keys, WindowPlan.of([w], 600), ["acme"], end)[("acme", w)]
            for w, end in ends.items()
        }
        together = read_windows(sync, keys, PLAN, ["acme"], now, ends)
        assert {w: together[("acme", w)] for w in ends} == alone
        # The reference: the in-memory store, each window read alone at its end.
        memory = MemoryCounts(PLAN.tiers, AUTHOR_LIMIT)
        asyncio.run(memory.apply(planned("mention", mentions, now) + planned(
            "interaction", seen, now)))  # fmt: skip
        for w, end in ends.items():
            expected = memory.windows(PLAN, ["acme"], end)[("acme", w)]
            assert alone[w][("mentions", "x")] == expected[("mentions", "x")] > 0
        assert (alone[300][("impressions", "x")], alone[300][("reach", "x")]) == (9, 7)
        needed = read_windows(sync, keys, PLAN, ["acme"], now, ends, only={"mentions"})
        for w in ends:
            assert ("reach", "x") not in needed[("acme", w)]
            assert needed[("acme", w)][("mentions", "x")] == alone[w][("mentions", "x")]
        # A distinct count alone: read on the platforms its source (impressions) counted on.
        reach = read_windows(sync, keys, PLAN, ["acme"], now, ends, only={"reach"})
        assert reach[("acme", 300)][("reach", "x")] == 7
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()
