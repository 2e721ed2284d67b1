"""Rolling counters in Redis: one hash per brand and event-time bucket, TTL on every key.

Keys carry the brand as a hash tag, so all of one brand's keys live in one Redis Cluster slot
and a brand's batch is one atomic Lua call:

- ``<prefix>:{<brand>}:b:<bucket start>``: hash ``<counter>|<platform>`` -> count
- ``<prefix>:{<brand>}:seen:<event id>``: marks an event id as counted (dedupe of redeliveries)
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio as aredis

from streams.counters import WindowCounts, sum_buckets
from streams.windows import window_buckets

# Counts an event only the first time its id is seen: Kafka delivers at least once, and a
# redelivery after a crash or rebalance must change nothing.
_APPLY = """
local ttl = tonumber(ARGV[1])
local applied = {}
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
    local bucket = KEYS[i + 1]
    for f in string.gmatch(ARGV[(i + 1) / 2 + 1], '[^,]+') do
      redis.call('HINCRBY', bucket, f, 1)
    end
    redis.call('EXPIRE', bucket, ttl)
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
    bucket: int
    fields: Sequence[str]
    sentiment_source: str | None = None  # mentions only: upstream or vader


@dataclass(frozen=True)
class RedisKeys:
    """Key names under one prefix (tests use their own prefix so they never collide)."""

    prefix: str

    def bucket(self, brand: str, start: int) -> str:
        """Hash of one brand's counters in the bucket starting at ``start``."""
        return f"{self.prefix}:{{{brand}}}:b:{start}"

    def seen(self, brand: str, event_id: str) -> str:
        """Marker that an event id has been counted."""
        return f"{self.prefix}:{{{brand}}}:seen:{event_id}"

    def alert(self, brand: str, rule: str, platform: str) -> str:
        """Marker that an alert for (rule, brand, platform) is firing."""
        return f"{self.prefix}:{{{brand}}}:alert:{rule}:{platform}"


class AsyncCountStore:
    """The worker's side: apply batches of events, read windows (asyncio)."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys, bucket_seconds: int, ttl: int):
        self.client = client
        self.keys = keys
        self.bucket_seconds = bucket_seconds
        self.ttl = ttl
        self._apply = client.register_script(_APPLY)

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
            keys: list[str] = []
            args: list[str | int] = [self.ttl]
            for event in batch:
                keys += [
                    self.keys.seen(brand, event.event_id),
                    self.keys.bucket(brand, event.bucket),
                ]
                args.append(",".join(event.fields))
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
        starts = window_buckets(now or time.time(), window_seconds, self.bucket_seconds)
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self.keys.bucket(brand, start))
        return sum_buckets(await pipe.execute())


def read_windows(
    client: redis.Redis,
    keys: RedisKeys,
    brands: Sequence[str],
    windows: Sequence[int],
    bucket_seconds: int,
    now: float | None = None,
) -> dict[tuple[str, int], WindowCounts]:
    """Counts for every (brand, window) in one round trip (synchronous: for /metrics scrapes)."""
    now = now or time.time()
    plan = [
        (brand, window, window_buckets(now, window, bucket_seconds))
        for brand in brands
        for window in windows
    ]
    pipe = client.pipeline(transaction=False)
    for brand, _, starts in plan:
        for start in starts:
            pipe.hgetall(keys.bucket(brand, start))
    replies = iter(pipe.execute())
    return {
        (brand, window): sum_buckets(next(replies) for _ in starts)
        for brand, window, starts in plan
    }
