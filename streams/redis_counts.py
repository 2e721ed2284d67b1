"""Rolling counters in Redis: one hash per brand, bucket tier and event-time bucket.

Keys carry the brand as a hash tag, so all of one brand's keys live in one Redis Cluster slot
and a brand's batch is one atomic Lua call:

- ``<prefix>:{<brand>}:b<tier>:<bucket start>``: hash ``<counter>|<platform>`` -> count
- ``<prefix>:{<brand>}:seen:<event-time minute>``: set of event ids already counted

Every key expires at an absolute time: a bucket when no window reads it any more, a dedupe set
when its events are past the allowed lateness.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio as aredis

from streams.counters import WindowCounts, sum_buckets
from streams.windows import DEDUPE_BUCKET, WindowPlan, bucket_start, window_buckets

# Counts an event only the first time its id is seen: Kafka delivers at least once, and a
# redelivery after a crash or rebalance must change nothing.
# KEYS per event: its dedupe set, then its bucket in each tier (stride 1 + ntiers).
# ARGV: ntiers, then per event: id, dedupe expiry, one expiry per tier, fields (comma-separated;
# "name" adds 1, "name=amount" adds the amount).
_APPLY = """
local ntiers = tonumber(ARGV[1])
local kstride, astride = 1 + ntiers, 3 + ntiers
local applied = {}
for e = 0, #KEYS / kstride - 1 do
  local k, a = e * kstride, 1 + e * astride
  if redis.call('SADD', KEYS[k + 1], ARGV[a + 1]) == 1 then
    redis.call('EXPIREAT', KEYS[k + 1], ARGV[a + 2])
    local fields = ARGV[a + 3 + ntiers]
    for t = 1, ntiers do
      local bucket = KEYS[k + 1 + t]
      for f in string.gmatch(fields, '[^,]+') do
        local name, amount = string.match(f, '^(.-)=(.+)$')
        if name then
          redis.call('HINCRBYFLOAT', bucket, name, amount)
        else
          redis.call('HINCRBY', bucket, f, 1)
        end
      end
      redis.call('EXPIREAT', bucket, ARGV[a + 2 + t])
    end
    applied[#applied + 1] = 1
  else
    applied[#applied + 1] = 0
  end
end
return applied
"""


@dataclass(frozen=True)
class CountedEvent:
    """What the store needs of a decoded event: who, which id, which bucket, which fields."""

    brand: str
    event_id: str
    ts: float  # event time, unix seconds
    fields: Sequence[str]
    sentiment_source: str | None = None  # mentions only: upstream or vader


@dataclass(frozen=True)
class RedisKeys:
    """Key names under one prefix (tests use their own prefix so they never collide)."""

    prefix: str

    def bucket(self, brand: str, tier: int, start: int) -> str:
        """Hash of one brand's counters in the ``tier``-second bucket starting at ``start``."""
        return f"{self.prefix}:{{{brand}}}:b{tier}:{start}"

    def seen(self, brand: str, minute: int) -> str:
        """Set of the ids of one brand's events, in the event-time minute ``minute``, counted."""
        return f"{self.prefix}:{{{brand}}}:seen:{minute}"

    def alert(self, brand: str, rule: str, platform: str) -> str:
        """Marker that an alert for (rule, brand, platform) is firing."""
        return f"{self.prefix}:{{{brand}}}:alert:{rule}:{platform}"


class AsyncCountStore:
    """The worker's side: apply batches of events, read windows (asyncio)."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys, plan: WindowPlan):
        self.client = client
        self.keys = keys
        self.plan = plan
        self._apply = client.register_script(_APPLY)

    def _script_call(self, brand: str, batch: Sequence[CountedEvent]) -> tuple[list[str], list]:
        tiers = self.plan.tiers
        keys: list[str] = []
        args: list[str | int | float] = [len(tiers)]
        for event in batch:
            keys.append(self.keys.seen(brand, bucket_start(event.ts, DEDUPE_BUCKET)))
            args += [event.event_id, self.plan.dedupe_expires_at(event.ts)]
            for tier in tiers:
                start = bucket_start(event.ts, tier)
                keys.append(self.keys.bucket(brand, tier, start))
                args.append(self.plan.bucket_expires_at(start, tier))
            args.append(",".join(event.fields))
        return keys, args

    async def apply(self, events: Sequence[CountedEvent]) -> list[CountedEvent]:
        """Count a batch in one round trip (one Lua call per brand); return the events that were
        new (the others were redeliveries of ids already counted)."""
        if not events:
            return []
        per_brand: dict[str, list[CountedEvent]] = defaultdict(list)
        for event in events:
            per_brand[event.brand].append(event)
        pipe = self.client.pipeline(transaction=False)
        for brand, batch in per_brand.items():
            keys, args = self._script_call(brand, batch)
            await self._apply(keys=keys, args=args, client=pipe)
        flags = await pipe.execute()
        return [
            event
            for batch, brand_flags in zip(per_brand.values(), flags, strict=True)
            for event, new in zip(batch, brand_flags, strict=True)
            if int(new)
        ]

    async def window(
        self, brand: str, window_seconds: int, now: float | None = None
    ) -> WindowCounts:
        """Counts of one brand over the rolling window ending at ``now`` (default: wall clock)."""
        tier = self.plan.tier(window_seconds)
        pipe = self.client.pipeline(transaction=False)
        for start in window_buckets(now or time.time(), window_seconds, tier):
            pipe.hgetall(self.keys.bucket(brand, tier, start))
        return sum_buckets(await pipe.execute())


def read_windows(
    client: redis.Redis,
    keys: RedisKeys,
    plan: WindowPlan,
    brands: Sequence[str],
    now: float | None = None,
) -> dict[tuple[str, int], WindowCounts]:
    """Counts for every (brand, window) in one round trip (synchronous: for /metrics scrapes)."""
    now = now or time.time()
    reads = [
        (brand, window, plan.tier(window), window_buckets(now, window, plan.tier(window)))
        for brand in brands
        for window in plan.windows
    ]
    pipe = client.pipeline(transaction=False)
    for brand, _, tier, starts in reads:
        for start in starts:
            pipe.hgetall(keys.bucket(brand, tier, start))
    replies = iter(pipe.execute())
    return {
        (brand, window): sum_buckets(next(replies) for _ in starts)
        for brand, window, _, starts in reads
    }
