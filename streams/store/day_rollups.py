"""Exact daily rollups: the long view (months, quarters, campaigns) kept past the rolling
windows' buckets, per brand and UTC day, for ``rollups.keep_days`` (400 by default).

A brand's day hash (``<prefix>:{brand}:day:<day start>``) holds ``<counter>|<platform>``
like a bucket; its dimension hash (``...:dday:<day start>``) ``<counter>|campaign:<id>`` and
``<counter>|content:<id>`` like a dimension bucket. They are summed from the coarsest bucket
tier the worker writes (hours with the shipped windows) once a bucket is complete (its end and
the allowed lateness past), by one script call per brand and bucket that also marks the
bucket rolled in the day hash (``_rolled:<start>``): several workers, a restart or a catch-up
roll each bucket once (a marker is dropped two days on, when its bucket has long expired; an
empty bucket is not marked). Amounts of at most 6 decimals are summed exactly as integers of
millionths, as the count script does; others with HINCRBYFLOAT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
import redis.asyncio as aredis

from socialpulse.core.connections import queue_script
from socialpulse.core.redis_keys import RedisKeys
from streams.store.count_script import EXACT_AMOUNTS
from streams.windows import WindowPlan

log = logging.getLogger(__name__)

DAY = 86400
MARKER = "_rolled:"
# A bucket is rolled this long after it is complete: the count script's last writes to it (a
# batch in flight when the lateness passed) are in by then.
SETTLE = 60

ROLL_UP = (
    EXACT_AMOUNTS
    + """
local function shown(n)
  local text = decimal(n)
  text = string.gsub(text, '0+$', '')
  return (string.gsub(text, '%.$', ''))
end
local marker = ARGV[1]
if redis.call('HEXISTS', KEYS[3], marker) == 1 then return 0 end
-- An empty bucket adds nothing, and no late write can come to it now: nothing to mark.
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
-- A marker is needed while its bucket exists (about a day): those of two days back go.
local old, tier = tonumber(ARGV[3]), tonumber(ARGV[4])
for start = old, old + 86400 - tier, tier do
  redis.call('HDEL', KEYS[5], '_rolled:' .. string.format('%d', start))
end
local function roll(source, target)
  local flat = redis.call('HGETALL', source)
  for i = 1, #flat, 2 do
    local name, amount = flat[i], flat[i + 1]
    local current = redis.call('HGET', target, name)
    local a, b = micros(amount), current and micros(current) or 0
    if a and b and math.abs(a + b) < EXACT then
      redis.call('HSET', target, name, shown(a + b))
    else
      redis.call('HINCRBYFLOAT', target, name, amount)
    end
  end
  return #flat / 2
end
local fields = roll(KEYS[1], KEYS[3]) + roll(KEYS[2], KEYS[4])
redis.call('HSET', KEYS[3], marker, 1)
redis.call('EXPIREAT', KEYS[3], ARGV[2])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('EXPIREAT', KEYS[4], ARGV[2]) end
return fields + 1
"""
)


def day_start(ts: float) -> int:
    """The UTC day holding ``ts``."""
    return int(ts // DAY) * DAY


def complete_buckets(plan: WindowPlan, now: float, since: int, catch_up: int) -> list[int]:
    """Starts of the buckets of the coarsest tier that are complete at ``now`` (their end and
    the allowed lateness past, plus SETTLE) after ``since`` (exclusive; a first run: up to
    ``catch_up`` seconds back), oldest first."""
    tier = max(plan.tiers)
    newest = int((now - plan.allowed_lateness - SETTLE) // tier) * tier - tier
    oldest = max(since + tier, int((now - catch_up) // tier) * tier)
    return list(range(oldest, newest + 1, tier))


class DayRollups:
    """Rolls complete buckets into day hashes (the worker's timer calls :meth:`roll`)."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys, plan: WindowPlan, keep_days: int):
        self.client = client
        self.keys = keys
        self.plan = plan
        self.keep_days = keep_days
        self.tier = max(plan.tiers)
        self.done = 0  # the newest bucket start rolled for every brand by this process

    async def roll(self, brands: Sequence[str], now: float) -> int:
        """Roll every complete bucket not yet rolled (by anyone) for ``brands``; on the first
        call, the buckets still kept (a day back); the number of bucket rolls that did work."""
        starts = complete_buckets(self.plan, now, self.done, catch_up=DAY - 2 * self.tier)
        if not starts or not brands:
            return 0
        script = self.client.register_script(ROLL_UP)
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            day = day_start(start)
            expire = day + (self.keep_days + 1) * DAY
            for brand in brands:
                await queue_script(
                    script,
                    pipe,
                    [
                        self.keys.bucket(brand, self.tier, start),
                        self.keys.dimension_bucket(brand, self.tier, start),
                        self.keys.day(brand, day),
                        self.keys.dimension_day(brand, day),
                        self.keys.day(brand, day - 2 * DAY),
                    ],
                    [f"{MARKER}{start}", expire, day - 2 * DAY, self.tier],
                )
        done = await pipe.execute()
        self.done = starts[-1]
        return sum(1 for n in done if n)


def _number(text: str) -> float:
    value = float(text)
    return int(value) if value.is_integer() else value


def read_days(
    client: redis.Redis, keys: RedisKeys, brand: str, days: Iterable[int]
) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]]]:
    """The day hashes of ``days`` (day starts): per day, ``<counter>|<platform>`` and the
    dimensions' ``<counter>|campaign:<id>`` / ``<counter>|content:<id>`` (markers left out;
    days without counts are absent)."""
    wanted = list(days)
    pipe = client.pipeline(transaction=False)
    for day in wanted:
        pipe.hgetall(keys.day(brand, day))
        pipe.hgetall(keys.dimension_day(brand, day))
    replies: list[Mapping[Any, Any]] = pipe.execute()
    counts: dict[int, dict[str, float]] = {}
    dimensions: dict[int, dict[str, float]] = {}
    for n, day in enumerate(wanted):
        plain, dims = replies[2 * n], replies[2 * n + 1]
        row = {
            _text(k): _number(_text(v)) for k, v in plain.items() if not _text(k).startswith("_")
        }
        if row:
            counts[day] = row
        if dims:
            dimensions[day] = {_text(k): _number(_text(v)) for k, v in dims.items()}
    return counts, dimensions


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
