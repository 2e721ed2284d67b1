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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis
from redis.commands.core import AsyncScript

from socialpulse.connections import is_cluster
from streams.counters import ALL_PLATFORMS, UNIQUE_SOURCE, WindowCounts, field, sum_buckets
from streams.customer_care import APPLY_CARE, WAITING_KEPT, backlog, response_quantiles
from streams.windows import DEDUPE_BUCKET, WindowPlan, window_buckets

# Counts a batch of one brand's events in one call. An event counts only the first time its id
# is seen: Kafka delivers at least once, and a redelivery after a crash or rebalance must change
# nothing. A new event whose author is over the per-minute limit adds its "filtered" fields
# instead of its KPI fields. Increments are summed in the script and written once per (bucket,
# field), so a batch costs one HINCRBY per distinct field instead of one per event and tier.
# KEYS: every key the batch touches, each once.
# ARGV: author limit per minute (0: none), number of key groups, one expiry per key, the key
# groups (comma-separated KEYS indices: an event's bucket in each tier, its dimensions' bucket
# in each tier, or the HyperLogLogs a distinct member goes to), then 11 per event: id, dedupe
# set, author-rate hash (0: not limited), author, bucket group, fields, filtered fields
# (comma-separated; "name" adds 1, "name=amount" adds the amount), distinct group (0: none),
# distinct member, dimension bucket group (0: none), dimension fields (per campaign and content
# item, all platforms together).
# Returns per event: 0 duplicate, 1 counted, 2 filtered.
_APPLY = """
local limit, ngroups, nkeys = tonumber(ARGV[1]), tonumber(ARGV[2]), #KEYS
local groups, touched, counts, members, status = {}, {}, {}, {}, {}
local function group(g)
  local keys = groups[g]
  if not keys then
    keys = {}
    for k in string.gmatch(ARGV[2 + nkeys + g], '%d+') do keys[#keys + 1] = tonumber(k) end
    groups[g] = keys
  end
  return keys
end
local function add(g, fields)
  local byfields = counts[g]
  if not byfields then byfields = {}; counts[g] = byfields end
  byfields[fields] = (byfields[fields] or 0) + 1
end
for a = 3 + nkeys + ngroups, #ARGV, 11 do
  local seen = tonumber(ARGV[a + 1])
  if redis.call('SADD', KEYS[seen], ARGV[a]) == 1 then
    touched[seen] = true
    local fields, result, rate = ARGV[a + 5], 1, tonumber(ARGV[a + 2])
    if limit > 0 and rate > 0 then
      touched[rate] = true
      if redis.call('HINCRBY', KEYS[rate], ARGV[a + 3], 1) > limit then
        fields, result = ARGV[a + 6], 2
      end
    end
    add(tonumber(ARGV[a + 4]), fields)
    local c = tonumber(ARGV[a + 9])
    if result == 1 and c > 0 then add(c, ARGV[a + 10]) end
    local u = tonumber(ARGV[a + 7])
    if result == 1 and u > 0 then
      for _, k in ipairs(group(u)) do
        local list = members[k]
        if not list then list = {}; members[k] = list end
        list[#list + 1] = ARGV[a + 8]
      end
    end
    status[#status + 1] = result
  else
    status[#status + 1] = 0
  end
end
local sums = {}
for g, byfields in pairs(counts) do
  local keys = group(g)
  for fields, n in pairs(byfields) do
    for f in string.gmatch(fields, '[^,]+') do
      local name, amount = string.match(f, '^(.-)=(.+)$')
      for _, k in ipairs(keys) do
        touched[k] = true
        if name then
          -- Amounts go in one by one, so Redis adds cents exactly as it always did.
          for _ = 1, n do redis.call('HINCRBYFLOAT', KEYS[k], name, amount) end
        else
          local per = sums[k]
          if not per then per = {}; sums[k] = per end
          per[f] = (per[f] or 0) + n
        end
      end
    end
  end
end
for k, per in pairs(sums) do
  for name, n in pairs(per) do redis.call('HINCRBY', KEYS[k], name, n) end
end
for k, list in pairs(members) do
  touched[k] = true
  for i = 1, #list, 1000 do
    redis.call('PFADD', KEYS[k], unpack(list, i, math.min(i + 999, #list)))
  end
end
for k in pairs(touched) do redis.call('EXPIREAT', KEYS[k], ARGV[2 + k]) end
return status
"""

# Keeps the newest value of a gauge (e.g. followers|x) by event time, so late or redelivered
# snapshots never overwrite a newer one. KEYS: the brand's gauge hash. ARGV: field, event
# time, value, expiry.
_GAUGE = """
local stamp = ARGV[1] .. '@ts'
local newest = tonumber(redis.call('HGET', KEYS[1], stamp) or '-1')
if tonumber(ARGV[2]) >= newest then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], stamp, ARGV[2])
end
redis.call('EXPIREAT', KEYS[1], ARGV[4])
"""
# A gauge no event has refreshed for this long is forgotten.
GAUGE_TTL = 90 * 86400


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
    unique: tuple[str, str] | None = None  # (field, member) for a distinct count, if counted
    gauge: tuple[str, float] | None = None  # (field, value) of a snapshot such as followers
    care: tuple[str, str] | None = None  # ("inbound" | "reply", conversation) for care messages
    dimension_fields: Sequence[str] = ()  # per campaign / content item (see counters.py)
    platform: str = ""  # where it happened (care matching is per platform)
    sample: dict[str, Any] | None = None  # mentions: what an incident may show (post_context)


@dataclass(frozen=True)
class AppliedBatch:
    """What a batch changed: events counted in the KPIs, and new events filtered out because
    their author posts faster than the limit. The rest were redeliveries."""

    counted: list[CountedEvent]
    filtered: list[CountedEvent]


class _ScriptCall:
    """KEYS and key groups of one script call, each key listed once (Lua indices, from 1)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.expiries: list[int] = []
        self.groups: list[str] = []
        self._index: dict[str, int] = {}

    def key(self, name: str, expires_at: int) -> int:
        """Index of the key ``name``, which expires at ``expires_at``."""
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            self.expiries.append(expires_at)
            index = self._index[name] = len(self.keys)
        return index

    def group(self, members: Iterable[tuple[str, int]]) -> int:
        """Index of a new group of keys (name, expiry) that are updated together."""
        self.groups.append(",".join(str(self.key(name, expiry)) for name, expiry in members))
        return len(self.groups)


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

    def gauges(self, brand: str) -> str:
        """Hash of one brand's last known gauges: ``<gauge>|<platform>`` -> value, and
        ``<gauge>|<platform>@ts`` -> the event time it was reported at."""
        return f"{self.prefix}:{{{brand}}}:gauges"

    def dimension_bucket(self, brand: str, tier: int, start: int) -> str:
        """Hash of one brand's counters per campaign and content item (``<counter>|campaign:<id>``,
        ``<counter>|content:<id>``, all platforms) in one ``tier``-second bucket."""
        return f"{self.prefix}:{{{brand}}}:d{tier}:{start}"

    def care_seen(self, brand: str, minute: int) -> str:
        """Set of the ids of care events in the event-time minute ``minute`` already applied."""
        return f"{self.prefix}:{{{brand}}}:care-seen:{minute}"

    def waiting(self, brand: str, platform: str) -> str:
        """Sorted set of unanswered conversations on a platform, by inbound event time."""
        return f"{self.prefix}:{{{brand}}}:care:waiting:{platform}"

    def care_platforms(self, brand: str) -> str:
        """Set of the platforms that have had waiting conversations."""
        return f"{self.prefix}:{{{brand}}}:care:platforms"

    def response_times(self, brand: str, tier: int, start: int, platform: str) -> str:
        """Sorted set of one bucket's responses on a platform, scored by seconds to reply."""
        return f"{self.prefix}:{{{brand}}}:rt{tier}:{start}:{platform}"

    def seen(self, brand: str, minute: int) -> str:
        """Set of the ids of one brand's events, in the event-time minute ``minute``, counted."""
        return f"{self.prefix}:{{{brand}}}:seen:{minute}"

    def detection(self, brand: str) -> str:
        """Hash of one brand's detection state: rule states, baselines, tick cursor, delivery."""
        return f"{self.prefix}:{{{brand}}}:detection"

    def alert_events(self, brand: str) -> str:
        """Stream of one brand's alert firings and clearings, oldest first."""
        return f"{self.prefix}:{{{brand}}}:alert-events"

    def target_starts(self, brand: str) -> str:
        """Hash of one brand's SMART targets' start values: target -> JSON {value, at}."""
        return f"{self.prefix}:{{{brand}}}:targets"

    def context_counts(self, brand: str, minute: int) -> str:
        """Hash of one event-time minute's term and language counts (streams.post_context)."""
        return f"{self.prefix}:{{{brand}}}:ctx:{minute}"

    def context_posts(self, brand: str, minute: int, platform: str) -> str:
        """Sorted set of one minute's top posts on a platform by reach (JSON samples)."""
        return f"{self.prefix}:{{{brand}}}:posts:{minute}:{platform}"

    def evaluation_lock(self) -> str:
        """Which worker evaluates the rules now (one at a time, so each tick is judged once)."""
        return f"{self.prefix}:evaluation-lock"


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
        self._gauge = client.register_script(_GAUGE)
        self._care = client.register_script(APPLY_CARE)
        self._cluster = is_cluster(client)

    async def _queue(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any], pipe: Any
    ) -> None:
        if self._cluster:
            # redis-py's cluster pipeline does not load scripts, and a node that restarts
            # forgets them (EVALSHA would fail with NOSCRIPT), so the text goes with each call;
            # Redis compiles it once and caches it by digest.
            pipe.eval(script.script, len(keys), *keys, *args)
        else:
            await script(keys=keys, args=args, client=pipe)

    def _script_call(self, brand: str, batch: Sequence[CountedEvent]) -> tuple[list[str], list]:
        call = _ScriptCall()
        tiers, keys, plan = self.plan.tiers, self.keys, self.plan
        finest = tiers[0]  # every coarser tier is a multiple of it, so its slot fixes them all
        buckets: dict[int, int] = {}
        distinct: dict[tuple[int, str], int] = {}
        dimensions: dict[int, int] = {}
        events: list[str | int] = []
        for event in batch:
            second = int(event.ts)
            slot = second - second % finest
            group = buckets.get(slot)
            if group is None:
                group = buckets[slot] = call.group(
                    (keys.bucket(brand, tier, start), plan.bucket_expires_at(start, tier))
                    for tier in tiers
                    for start in (slot - slot % tier,)
                )
            minute = second - second % DEDUPE_BUCKET
            # Both live as long as a redelivery of the event could still arrive.
            expiry = plan.dedupe_expires_at(event.ts)
            seen = call.key(keys.seen(brand, minute), expiry)
            rate = call.key(keys.author_rate(brand, minute), expiry) if event.author else 0
            unique, member = 0, ""
            if event.unique:
                name, member = event.unique
                unique = distinct.get((slot, name), 0)
                if not unique:
                    unique = distinct[(slot, name)] = call.group(
                        (keys.unique(brand, tier, start, name), plan.bucket_expires_at(start, tier))
                        for tier in tiers
                        for start in (slot - slot % tier,)
                    )
            dimension = 0
            if event.dimension_fields:
                dimension = dimensions.get(slot, 0)
                if not dimension:
                    dimension = dimensions[slot] = call.group(
                        (
                            keys.dimension_bucket(brand, tier, start),
                            plan.bucket_expires_at(start, tier),
                        )
                        for tier in tiers
                        for start in (slot - slot % tier,)
                    )
            events += [
                event.event_id,
                seen,
                rate,
                event.author or "",
                group,
                ",".join(event.fields),
                ",".join(event.filtered_fields),
                unique,
                member,
                dimension,
                ",".join(event.dimension_fields),
            ]
        return call.keys, [
            self.author_limit,
            len(call.groups),
            *call.expiries,
            *call.groups,
            *events,
        ]

    def _care_call(self, event: CountedEvent) -> tuple[list[str], list[str | int | float]]:
        assert event.care is not None
        kind, thread = event.care
        brand, platform, plan, keys = event.brand, event.platform, self.plan, self.keys
        now = int(time.time())
        second = int(event.ts)
        call_keys = [
            keys.care_seen(brand, second - second % DEDUPE_BUCKET),
            keys.waiting(brand, platform),
            keys.care_platforms(brand),
        ]
        expiries = []
        for tier in plan.tiers:
            start = second - second % tier
            call_keys += [
                keys.response_times(brand, tier, start, platform),
                keys.bucket(brand, tier, start),
            ]
            expiries.append(plan.bucket_expires_at(start, tier))
        args: list[str | int | float] = [
            event.event_id,
            kind,
            thread,
            event.ts,
            plan.dedupe_expires_at(event.ts),
            now + WAITING_KEPT,
            now - WAITING_KEPT,
            platform,
            len(plan.tiers),
            *expiries,
        ]
        return call_keys, args

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        """Count a batch in one round trip: one Lua call per brand, increments summed."""
        if not events:
            return AppliedBatch([], [])
        per_brand: dict[str, list[CountedEvent]] = defaultdict(list)
        for event in events:
            per_brand[event.brand].append(event)
        pipe = self.client.pipeline(transaction=False)
        for brand, batch in per_brand.items():
            keys, args = self._script_call(brand, batch)
            await self._queue(self._apply, keys, args, pipe)
        # Setting the newest value is idempotent, so gauges need no dedupe of their own.
        for event in events:
            if event.gauge:
                name, value = event.gauge
                expiry = int(time.time()) + GAUGE_TTL
                args = [name, event.ts, value, expiry]
                await self._queue(self._gauge, [self.keys.gauges(event.brand)], args, pipe)
        for event in events:
            if event.care:
                await self._queue(self._care, *self._care_call(event), pipe)
        replies = (await pipe.execute())[: len(per_brand)]
        statuses = [
            (event, int(status))
            for batch, brand_statuses in zip(per_brand.values(), replies, strict=True)
            for event, status in zip(batch, brand_statuses, strict=True)
        ]
        return AppliedBatch(
            counted=[event for event, status in statuses if status == 1],
            filtered=[event for event, status in statuses if status == 2],
        )

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
    round trip for the counters and last known gauges (the same in every window), one for the
    distinct counts of the platforms that have any (per platform, and their union as "all")."""
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
    for brand in brands:
        pipe.hgetall(keys.gauges(brand))
    replies = iter(pipe.execute())
    result = {
        (brand, window): sum_buckets(next(replies) for _ in starts)
        for brand, window, _, starts in reads
    }
    for brand in brands:
        gauges = sum_buckets([{k: v for k, v in next(replies).items() if "@" not in k}])
        for window in plan.windows:
            result[(brand, window)].update(gauges)
    distinct: list[tuple[tuple[str, int], tuple[str, str]]] = []
    pipe = client.pipeline(transaction=False)
    for brand, window, tier, starts in reads:
        counts = result[(brand, window)]
        for unique, source in UNIQUE_SOURCE.items():
            platforms = [p for (c, p), n in counts.items() if c == source and n > 0]
            for platform in platforms:
                _pfcount(
                    pipe, [keys.unique(brand, tier, s, field(unique, platform)) for s in starts]
                )
                distinct.append(((brand, window), (unique, platform)))
            if platforms:
                _pfcount(
                    pipe,
                    [
                        keys.unique(brand, tier, s, field(unique, p))
                        for s in starts
                        for p in platforms
                    ],
                )
                distinct.append(((brand, window), (unique, ALL_PLATFORMS)))
    if distinct:
        for (read, name), n in zip(distinct, pipe.execute(), strict=True):
            result[read][name] = int(n)
    _read_care(client, keys, reads, result, brands, now)
    return result


def _pfcount(pipe: Any, keys: Sequence[str]) -> None:
    # redis-py's cluster pipeline refuses pfcount() for any multi-key use; the command itself
    # is fine there, as one brand's keys share a hash slot.
    pipe.execute_command("PFCOUNT", *keys)


def _read_care(
    client: redis.Redis,
    keys: RedisKeys,
    reads: Sequence[tuple[str, int, int, list[int]]],
    result: dict[tuple[str, int], WindowCounts],
    brands: Sequence[str],
    now: float,
) -> None:
    """Add response-time quantiles (per window) and the backlog (now, the same in every
    window) per platform and for "all", in two round trips."""
    pipe = client.pipeline(transaction=False)
    for brand in brands:
        pipe.smembers(keys.care_platforms(brand))
    waiting_platforms = dict(zip(brands, (sorted(p) for p in pipe.execute()), strict=True))
    pipe = client.pipeline(transaction=False)
    asks: list[tuple[str, str, str, int | None]] = []  # (what, brand, platform, window)
    for brand, platforms in waiting_platforms.items():
        for platform in platforms:
            pipe.zcard(keys.waiting(brand, platform))
            pipe.zrange(keys.waiting(brand, platform), 0, 0, withscores=True)
            asks.append(("backlog", brand, platform, None))
    for brand, window, tier, starts in reads:
        counts = result[(brand, window)]
        answered = [p for (c, p), n in counts.items() if c == "responses" and n > 0]
        for platform in [*answered, ALL_PLATFORMS] if answered else []:
            shown = answered if platform == ALL_PLATFORMS else [platform]
            sets = [keys.response_times(brand, tier, s, p) for s in starts for p in shown]
            pipe.zunion(sets, withscores=True)
            asks.append(("times", brand, platform, window))
    replies = iter(pipe.execute())
    backlogs: dict[str, dict[str, tuple[int, float | None]]] = {}
    for what, brand, platform, asked_window in asks:
        if what == "backlog":
            waiting, oldest = int(next(replies)), next(replies)
            backlogs.setdefault(brand, {})[platform] = (waiting, oldest[0][1] if oldest else None)
            continue
        assert asked_window is not None
        seconds = [score for _, score in next(replies)]
        for name, value in response_quantiles(seconds).items():
            result[(brand, asked_window)][(name, platform)] = value
    for brand, per_platform in backlogs.items():
        oldest_all = min((t for _, t in per_platform.values() if t is not None), default=None)
        rows = {
            **{p: backlog(n, t, now) for p, (n, t) in per_platform.items()},
            ALL_PLATFORMS: backlog(sum(n for n, _ in per_platform.values()), oldest_all, now),
        }
        for window in {w for b, w in result if b == brand}:
            for platform, values in rows.items():
                for name, value in values.items():
                    result[(brand, window)][(name, platform)] = value


def read_dimension_windows(
    client: redis.Redis,
    keys: RedisKeys,
    plan: WindowPlan,
    brand: str,
    dimension: str,
    now: float | None = None,
) -> dict[int, WindowCounts]:
    """One brand's counts per campaign or content item (``dimension``) for every window, keyed
    (counter, campaign or content id), in one round trip."""
    now = now or time.time()
    reads = [(w, plan.tier(w), window_buckets(now, w, plan.tier(w))) for w in plan.windows]
    pipe = client.pipeline(transaction=False)
    for _, tier, starts in reads:
        for start in starts:
            pipe.hgetall(keys.dimension_bucket(brand, tier, start))
    replies = iter(pipe.execute())
    prefix = f"|{dimension}:"
    return {
        window: sum_buckets(
            {name.replace(prefix, "|"): n for name, n in bucket.items() if prefix in name}
            for bucket in (next(replies) for _ in starts)
        )
        for window, _, starts in reads
    }
