"""Daily rollups on the real Redis: complete hour buckets summed into day hashes exactly, each
once whoever rolls it, markers dropped when their buckets are long gone."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aredis

from socialpulse.core.redis_keys import RedisKeys
from streams.store.day_rollups import DAY, SETTLE, DayRollups, complete_buckets, read_days
from streams.windows import WindowPlan

PLAN = WindowPlan.of([60, 300, 900, 3600, 86400], 600)
D = 1_796_515_200  # a UTC day's start (2026-12-06)


def roll(url: str, keys: RedisKeys, brands: list[str], now: float, done: int = 0) -> int:
    async def go() -> int:
        client = aredis.Redis.from_url(url, decode_responses=True)
        rollups = DayRollups(client, keys, PLAN, keep_days=400)
        rollups.done = done
        try:
            return await rollups.roll(brands, now)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_complete_buckets_wait_for_lateness_and_catch_up_a_day_at_most() -> None:
    hour_end = D + 10 * 3600
    # The 09:00 hour is complete once 10:00, the lateness (600 s) and SETTLE have passed.
    assert complete_buckets(PLAN, hour_end + 600 + SETTLE - 1, D + 8 * 3600, DAY) == []
    assert complete_buckets(PLAN, hour_end + 600 + SETTLE, D + 8 * 3600, DAY) == [D + 9 * 3600]
    first_run = complete_buckets(PLAN, hour_end + 700, 0, 5 * 3600)
    assert first_run == [D + h * 3600 for h in range(5, 10)]


def test_hours_roll_into_their_day_exactly_and_once_whoever_rolls(
    stack: Any, scratch: tuple[RedisKeys, redis.Redis]
) -> None:
    keys, sync = scratch
    url = stack.pipeline.redis.url
    for hour, revenue in ((8, "19.99"), (9, "0.01")):
        start = D + hour * 3600
        sync.hset(keys.bucket("acme", 3600, start), mapping={"mentions|x": 3, "revenue|x": revenue})
        sync.hset(
            keys.dimension_bucket("acme", 3600, start),
            mapping={"revenue|campaign:spring": revenue, "production_cost|content:post-9": "120.5"},
        )
    sync.hset(keys.bucket("acme", 3600, D + 7 * 3600), mapping={"amount|x": "1e-07"})
    now = D + 10 * 3600 + 700
    assert roll(url, keys, ["acme", "quiet"], now) == 3  # 07:00, 08:00, 09:00 of acme
    assert roll(url, keys, ["acme", "quiet"], now) == 0  # another worker, or a restart
    counts, dims = read_days(sync, keys, "acme", [D])
    assert counts == {D: {"mentions|x": 6, "revenue|x": 20, "amount|x": 1e-07}}
    assert dims == {D: {"revenue|campaign:spring": 20, "production_cost|content:post-9": 241}}
    assert sync.hget(keys.day("acme", D), "revenue|x") == "20"  # exact: 19.99 + 0.01
    assert sync.hget(keys.day("acme", D), "amount|x") == "0.0000001"  # HINCRBYFLOAT's form
    # A quiet brand's empty buckets make no day hash, not even a marker.
    assert not sync.exists(keys.day("quiet", D))
    assert D + 400 * DAY < sync.expiretime(keys.day("acme", D)) <= D + 401 * DAY
    # Two days on, the day's markers go (their buckets are long expired); its counts stay.
    later = D + 2 * DAY + 5 * 3600
    sync.hset(keys.bucket("acme", 3600, later), mapping={"mentions|x": 1})
    assert roll(url, keys, ["acme"], later + 3600 + 700, done=later - 3600) == 1
    assert sorted(sync.hkeys(keys.day("acme", D))) == ["amount|x", "mentions|x", "revenue|x"]
