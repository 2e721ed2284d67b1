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

from streams.counters import ALL_PLATFORMS, UNIQUE_SOURCE, WindowCounts, field, sum_buckets
from streams.windows import DEDUPE_BUCKET, WindowPlan, bucket_start, window_buckets

# Counts an event only the first time its id is seen: Kafka delivers at least once, and a
# redelivery after a crash or rebalance must change nothing. A new event whose author is over
# the per-minute limit adds its "filtered" fields instead of its KPI fields.
# KEYS per event: dedupe set, author-rate hash, then its bucket in each tier (2 + ntiers).
# ARGV: ntiers, author limit per minute (0: none), then per event: id, dedupe expiry,
# rate expiry, author ('' to skip), one expiry per tier, fields, filtered fields (fields are
# comma-separated; "name" adds 1, "name=amount" adds the amount).
# Returns per event: 0 duplicate, 1 counted, 2 filtered.
_APPLY = """
local ntiers, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local kstride, astride = 2 + ntiers, 6 + ntiers
local status = {}
for e = 0, #KEYS / kstride - 1 do
  local k, a = e * kstride, 2 + e * astride
  if redis.call('SADD', KEYS[k + 1], ARGV[a + 1]) == 1 then
    redis.call('EXPIREAT', KEYS[k + 1], ARGV[a + 2])
    local fields, result = ARGV[a + 5 + ntiers], 1
    if limit > 0 and ARGV[a + 4] ~= '' then
      local posts = redis.call('HINCRBY', KEYS[k + 2], ARGV[a + 4], 1)
      redis.call('EXPIREAT', KEYS[k + 2], ARGV[a + 3])
      if posts > limit then
        fields, result = ARGV[a + 6 + ntiers], 2
      end
    end
    for t = 1, ntiers do
      local bucket = KEYS[k + 2 + t]
      for f in string.gmatch(fields, '[^,]+') do
        local name, amount = string.match(f, '^(.-)=(.+)$')
        if name then
          redis.call('HINCRBYFLOAT', bucket, name, amount)
        else
          redis.call('HINCRBY', bucket, f, 1)
        end
      end
      redis.call('EXPIREAT', bucket, ARGV[a + 4 + t])
    end
    status[#status + 1] = result
  else
    status[#status + 1] = 0
  end
end
return status
"""


@dataclass(frozen=True)
class CountedEvent:
    """What the store needs of a decoded event: who, which id, which bucket, which fields."""

    brand: str
    event_id: str
    ts: float  # event time, unix seconds
    fields: Sequence[str]
    sentiment_source: str | None = None  # mentions only: upstream or vader
    author: str | None = None  # whose posting rate is limited (mentions); None: not limited
    filtered_fields: Sequence[str] = ()  # what it adds instead when its author is over the rate
    excluded: str | None = None  # why its fields are "filtered" from the start (e.g. "bot")
    uniques: Sequence[tuple[str, str]] = ()  # (field, member) for distinct counts, if counted


@dataclass(frozen=True)
class AppliedBatch:
    """What a batch changed: events counted in the KPIs, and new events filtered out because
    their author posts faster than the limit. The rest were redeliveries."""

    counted: list[CountedEvent]
    filtered: list[CountedEvent]


@dataclass(frozen=True)
class RedisKeys:
    """Key names under one prefix (tests use their own prefix so they never collide)."""

    prefix: str

    def bucket(self, brand: str, tier: int, start: int) -> str:
        """Hash of one brand's counters in the ``tier``-second bucket starting at ``start``."""
        return f"{self.prefix}:{{{brand}}}:b{tier}:{start}"

    def unique(self, brand: str, tier: int, start: int, field: str) -> str:
        """HyperLogLog of one distinct count (``<counter>|<platform>``) in one bucket."""
        return f"{self.prefix}:{{{brand}}}:u{tier}:{start}:{field}"

    def author_rate(self, brand: str, minute: int) -> str:
        """Hash author -> mentions counted in the minute starting at ``minute``."""
        return f"{self.prefix}:{{{brand}}}:rate:{minute}"

    def seen(self, brand: str, minute: int) -> str:
        """Set of the ids of one brand's events, in the event-time minute ``minute``, counted."""
        return f"{self.prefix}:{{{brand}}}:seen:{minute}"

    def alert(self, brand: str, rule: str, platform: str) -> str:
        """Marker that an alert for (rule, brand, platform) is firing."""
        return f"{self.prefix}:{{{brand}}}:alert:{rule}:{platform}"


class AsyncCountStore:
    """The worker's side: apply batches of events, read windows (asyncio)."""

    def __init__(
        self,
        client: aredis.Redis,
        keys: RedisKeys,
        plan: WindowPlan,
        author_limit_per_minute: int = 0,
    ):
        self.client = client
        self.keys = keys
        self.plan = plan
        self.author_limit = author_limit_per_minute
        self._apply = client.register_script(_APPLY)

    def _script_call(self, brand: str, batch: Sequence[CountedEvent]) -> tuple[list[str], list]:
        tiers = self.plan.tiers
        keys: list[str] = []
        args: list[str | int | float] = [len(tiers), self.author_limit]
        for event in batch:
            minute = bucket_start(event.ts, DEDUPE_BUCKET)
            keys += [self.keys.seen(brand, minute), self.keys.author_rate(brand, minute)]
            # Both live as long as a redelivery of the event could still arrive.
            expiry = self.plan.dedupe_expires_at(event.ts)
            args += [event.event_id, expiry, expiry, event.author or ""]
            for tier in tiers:
                start = bucket_start(event.ts, tier)
                keys.append(self.keys.bucket(brand, tier, start))
                args.append(self.plan.bucket_expires_at(start, tier))
            args += [",".join(event.fields), ",".join(event.filtered_fields)]
        return keys, args

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        """Count a batch in one round trip (one Lua call per brand)."""
        if not events:
            return AppliedBatch([], [])
        per_brand: dict[str, list[CountedEvent]] = defaultdict(list)
        for event in events:
            per_brand[event.brand].append(event)
        pipe = self.client.pipeline(transaction=False)
        for brand, batch in per_brand.items():
            keys, args = self._script_call(brand, batch)
            await self._apply(keys=keys, args=args, client=pipe)
        statuses = [
            (event, int(status))
            for batch, brand_statuses in zip(per_brand.values(), await pipe.execute(), strict=True)
            for event, status in zip(batch, brand_statuses, strict=True)
        ]
        applied = AppliedBatch(
            counted=[event for event, status in statuses if status == 1],
            filtered=[event for event, status in statuses if status == 2],
        )
        await self._add_uniques(applied.counted)
        return applied

    async def _add_uniques(self, counted: Sequence[CountedEvent]) -> None:
        # PFADD is idempotent, so this second round trip needs no dedupe of its own; it runs
        # only for events the script counted, which keeps bots and over-rate authors out.
        members: dict[tuple[str, int, int, str], set[str]] = defaultdict(set)
        for event in counted:
            for name, member in event.uniques:
                for tier in self.plan.tiers:
                    members[(event.brand, tier, bucket_start(event.ts, tier), name)].add(member)
        if not members:
            return
        pipe = self.client.pipeline(transaction=False)
        for (brand, tier, start, name), group in members.items():
            key = self.keys.unique(brand, tier, start, name)
            pipe.pfadd(key, *group)
            pipe.expireat(key, self.plan.bucket_expires_at(start, tier))
        await pipe.execute()

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
    """Counts for every (brand, window), synchronously (for /metrics scrapes and the CLI): one
    round trip for the counters, one for the distinct counts of the platforms that have any
    (per platform, and their union as platform "all")."""
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
    result = {
        (brand, window): sum_buckets(next(replies) for _ in starts)
        for brand, window, _, starts in reads
    }
    distinct: list[tuple[tuple[str, int], tuple[str, str]]] = []
    pipe = client.pipeline(transaction=False)
    for brand, window, tier, starts in reads:
        counts = result[(brand, window)]
        for unique, source in UNIQUE_SOURCE.items():
            platforms = [p for (c, p), n in counts.items() if c == source and n > 0]
            for platform in platforms:
                pipe.pfcount(
                    *(keys.unique(brand, tier, s, field(unique, platform)) for s in starts)
                )
                distinct.append(((brand, window), (unique, platform)))
            if platforms:
                pipe.pfcount(
                    *(
                        keys.unique(brand, tier, s, field(unique, p))
                        for s in starts
                        for p in platforms
                    )
                )
                distinct.append(((brand, window), (unique, ALL_PLATFORMS)))
    if distinct:
        for (read, name), n in zip(distinct, pipe.execute(), strict=True):
            result[read][name] = int(n)
    return result
