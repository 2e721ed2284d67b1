"""Rolling counters in Redis: the worker's count store, and the reads /metrics and the CLI use.

Keys (socialpulse.core.redis_keys) carry the brand as a hash tag, so all of one brand's keys live in
one Redis Cluster slot and a brand's batch is one atomic script call
(streams.store.count_script):

- ``<prefix>:{<brand>}:b<tier>:<bucket start>``: hash ``<counter>|<platform>`` -> count
- ``<prefix>:{<brand>}:seen:<event type>:<event-time minute>``: set of event ids counted

Every key expires at an absolute time: a bucket when no window reads it any more, a dedupe set
when its events are past the allowed lateness.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
import redis.asyncio as aredis

from socialpulse.core.connections import REDIS_UNAVAILABLE, queue_script, refused_for_now
from socialpulse.core.redis_keys import RedisKeys
from streams.counted import AppliedBatch, CountedEvent, Failed
from streams.counters import (
    ALL_PLATFORMS,
    CARE_READINGS,
    UNIQUE_SOURCE,
    WindowCounts,
    field,
    sum_buckets,
)
from streams.customer_care import backlog, response_quantiles
from streams.events import MetricSnapshot
from streams.snapshots import ObjectState, Step, step
from streams.store.count_script import APPLY_BATCH, SnapshotWrite, brand_call
from streams.store.window_sums import load_sums, queue_sums, window_counts
from streams.windows import TIERS, WindowPlan, window_buckets, window_reads

log = logging.getLogger(__name__)


class RedisBusy(redis.ConnectionError):
    """Redis refused a batch for a reason that passes (connections.refused_for_now): the batch
    is retried as a whole, not narrowed down."""


class AsyncCountStore:
    """The worker's side: apply batches of events in one round trip (asyncio); a CountStore
    (streams.store.base)."""

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
        self._apply = client.register_script(APPLY_BATCH)

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        """Count a batch in one round trip (one script call per brand). A brand's call that
        fails is narrowed down by halves to the events at fault, which come back as failed
        (the script writes nothing when it refuses a call, so retrying halves is safe).
        Redis being unreachable or refusing writes for now raises (REDIS_UNAVAILABLE)."""
        if not events:
            return AppliedBatch([], [])
        per_brand: dict[str, list[CountedEvent]] = defaultdict(list)
        for event in events:
            per_brand[event.brand].append(event)
        results = await self._apply_brands([(b, batch, ()) for b, batch in per_brand.items()])
        applied = AppliedBatch([], [])
        for (_, batch), result in zip(per_brand.items(), results, strict=True):
            if isinstance(result, Exception):
                applied += await self._narrow_down(batch, result)
            else:
                applied += _statuses(batch, result)
        return applied

    async def _apply_brands(
        self, batches: Sequence[tuple[str, Sequence[CountedEvent], Sequence[SnapshotWrite]]]
    ) -> list[list[int] | Exception]:
        results: list[list[int] | Exception | None] = []
        pipe = self.client.pipeline(transaction=False)
        queued = 0
        for brand, batch, snapshots in batches:
            try:
                keys, args = brand_call(
                    self.keys, self.plan, brand, batch, self.author_limit, snapshots=snapshots
                )
            except ValueError as exc:  # an event the script could not take: nothing is sent
                results.append(exc)
                continue
            await queue_script(self._apply, pipe, keys, args)
            results.append(None)
            queued += 1
        try:
            replies = iter(await pipe.execute(raise_on_error=False) if queued else [])
        except REDIS_UNAVAILABLE:
            raise
        except Exception as exc:
            # Each command's own failure comes back as its reply; what raises here is the
            # client or the connection (e.g. redis-py's cluster pipeline on a node that went
            # away): not this batch's fault, so it is retried, never dead-lettered.
            raise RedisBusy(f"{type(exc).__name__}: {exc}") from exc
        out: list[list[int] | Exception] = []
        for result in results:
            if result is not None:
                out.append(result)
                continue
            reply = next(replies)
            if isinstance(reply, Exception) and refused_for_now(reply):
                raise RedisBusy(f"{type(reply).__name__}: {reply}") from reply
            if isinstance(reply, Exception):
                if not isinstance(reply, redis.ResponseError):
                    raise reply  # not an answer about this batch: let the caller retry
                log.warning("count script refused a batch: %s", reply)
            out.append(reply)
        return out

    async def _narrow_down(self, batch: Sequence[CountedEvent], error: Exception) -> AppliedBatch:
        if len(batch) == 1:
            return AppliedBatch([], [], [Failed(batch[0], f"{type(error).__name__}: {error}")])
        middle = len(batch) // 2
        applied = AppliedBatch([], [])
        for half in (batch[:middle], batch[middle:]):
            [result] = await self._apply_brands([(half[0].brand, half, ())])
            if isinstance(result, Exception):
                applied += await self._narrow_down(half, result)
            else:
                applied += _statuses(half, result)
        return applied

    async def apply_snapshots(
        self, snapshots: Sequence[MetricSnapshot], track_for: int, now: float | None = None
    ) -> list[Step | Failed]:
        """Count a batch of metric snapshots (streams.snapshots): per snapshot, what it did, or
        why it failed (nothing of it written). Each object's state is read, the increments
        computed, and state and counts written together only if no other writer changed the
        object since the read (else it is read again: a rebalance may briefly give two
        workers one brand). Redis being unreachable raises (REDIS_UNAVAILABLE)."""
        now = time.time() if now is None else now
        outcome: list[Step | Failed | None] = [None] * len(snapshots)
        pending = list(range(len(snapshots)))
        for _ in range(SNAPSHOT_ROUNDS):
            if not pending:
                break
            pending = await self._snapshot_round(snapshots, pending, outcome, track_for, now)
        for i in pending:
            outcome[i] = Failed(snapshot_event(snapshots[i]), "conflict: the object kept changing")
        return [o for o in outcome if o is not None]

    async def _snapshot_round(
        self,
        snapshots: Sequence[MetricSnapshot],
        pending: Sequence[int],
        outcome: list[Step | Failed | None],
        track_for: int,
        now: float,
    ) -> list[int]:
        key_of = {
            i: self.keys.snapshot_object(s.brand, s.platform, s.object_id)
            for i, s in ((i, snapshots[i]) for i in pending)
        }
        wanted = list(dict.fromkeys(key_of.values()))
        pipe = self.client.pipeline(transaction=False)
        for key in wanted:
            pipe.hgetall(key)
        replies = await pipe.execute(raise_on_error=False)
        states: dict[str, ObjectState | None] = {}
        for key, reply in zip(wanted, replies, strict=True):
            if isinstance(reply, Exception) and (
                refused_for_now(reply) or not isinstance(reply, redis.ResponseError)
            ):
                raise RedisBusy(f"{type(reply).__name__}: {reply}") from reply
            # A key holding another type: read as new; the write then fails by type check.
            states[key] = None if isinstance(reply, Exception) else ObjectState.from_store(reply)
        per_brand: dict[str, list[tuple[int, SnapshotWrite, Step]]] = defaultdict(list)
        for i in pending:
            snapshot, key = snapshots[i], key_of[i]
            state = states[key]
            result = step(state, snapshot, self.plan, track_for, now)
            if result.state is None:
                outcome[i] = result
                continue
            version = state.version if state else 0
            write = SnapshotWrite(
                key,
                version,
                result.state.to_json(),
                snapshot_expiry(result.state, track_for, now),
                result.pieces,
            )
            # A later snapshot of the object in this batch builds on this one.
            states[key] = replace(result.state, version=version + 1)
            per_brand[snapshot.brand].append((i, write, result))
        batches = list(per_brand.items())
        results = await self._apply_brands(
            [(brand, (), [w for _, w, _ in writes]) for brand, writes in batches]
        )
        retry: list[int] = []
        for (_, writes), reply in zip(batches, results, strict=True):
            if isinstance(reply, Exception):
                retry += await self._snapshots_one_by_one(snapshots, writes, outcome, reply)
                continue
            for (i, _, result), status in zip(writes, reply, strict=True):
                if int(status) == 1:
                    outcome[i] = result
                else:
                    retry.append(i)
        return sorted(retry)

    async def _snapshots_one_by_one(
        self,
        snapshots: Sequence[MetricSnapshot],
        writes: Sequence[tuple[int, SnapshotWrite, Step]],
        outcome: list[Step | Failed | None],
        error: Exception,
    ) -> list[int]:
        # A refused call: each snapshot alone, so only those at fault fail.
        if len(writes) == 1:
            i = writes[0][0]
            outcome[i] = Failed(snapshot_event(snapshots[i]), f"{type(error).__name__}: {error}")
            return []
        retry: list[int] = []
        for i, write, result in writes:
            [reply] = await self._apply_brands([(snapshots[i].brand, (), [write])])
            if isinstance(reply, Exception):
                why = f"{type(reply).__name__}: {reply}"
                outcome[i] = Failed(snapshot_event(snapshots[i]), why)
            elif int(reply[0]) == 1:
                outcome[i] = result
            else:
                retry.append(i)
        return retry


# Rounds of read, compute and compare-and-set before a snapshot is given up as failed.
SNAPSHOT_ROUNDS = 8
# Old snapshots (a history import) still keep their object's state this long, so the next
# snapshot of the import counts against it rather than from zero again.
REPLAY_KEPT = 86400


def snapshot_expiry(state: ObjectState, track_for: int, now: float) -> int:
    """When an object's state is forgotten: ``track_for`` after its tracking started, and no
    sooner than a day from now."""
    return int(max(state.since + track_for, now + REPLAY_KEPT))


def snapshot_event(snapshot: MetricSnapshot) -> CountedEvent:
    """A snapshot in the shape of a counted event (brand, id, time, platform), for what
    handles both: lenient mode's bound, the failures of a batch."""
    return CountedEvent(
        snapshot.brand, snapshot.id, snapshot.ts.timestamp(), (), "snapshot",
        platform=snapshot.platform,
    )  # fmt: skip


def _statuses(batch: Sequence[CountedEvent], statuses: Sequence[Any]) -> AppliedBatch:
    pairs = list(zip(batch, (int(s) for s in statuses), strict=True))
    return AppliedBatch(
        counted=[event for event, status in pairs if status == 1],
        filtered=[event for event, status in pairs if status == 2],
    )


def read_windows(
    client: redis.Redis,
    keys: RedisKeys,
    plan: WindowPlan,
    brands: Sequence[str],
    now: float | None = None,
    ends: Mapping[int, float] | None = None,
    only: Collection[str] | None = None,
) -> dict[tuple[str, int], WindowCounts]:
    """Counts for every (brand, window), synchronously (for /metrics scrapes, the evaluation
    and the CLI), each window ending at ``now`` or at its own time in ``ends``: one round trip
    for the counters (a bucket that several windows cover is read once) and last known gauges
    (the same in every window), one for the distinct counts of the platforms that have any
    (per platform, and their union as "all"), and the customer-care readings. ``only``: the
    counters the caller needs; distinct counts and care readings not among them are not read
    (they cost most of a read of many brands)."""
    now = now or time.time()
    end = {w: (ends or {}).get(w, now) for w in plan.windows}
    reads, result = _read_buckets(client, keys, plan, brands, end, only)
    pipe = client.pipeline(transaction=False)
    for brand in brands:
        pipe.hgetall(keys.gauges(brand))
    replies = iter(_execute(pipe))
    for brand in brands:
        gauges = sum_buckets([{k: v for k, v in (next(replies) or {}).items() if "@" not in k}])
        for window in plan.windows:
            result[(brand, window)].update(gauges)
    distinct: list[tuple[tuple[str, int], tuple[str, str]]] = []
    pipe = client.pipeline(transaction=False)
    for brand, window, parts in reads:
        counts = result[(brand, window)]
        for unique, source in UNIQUE_SOURCE.items():
            if only is not None and unique not in only:
                continue
            platforms = [p for (c, p), n in counts.items() if c == source and n > 0]
            for platform in platforms:
                _pfcount(
                    pipe, [keys.unique(brand, t, s, field(unique, platform)) for t, s in parts]
                )
                distinct.append(((brand, window), (unique, platform)))
            if platforms:
                _pfcount(
                    pipe,
                    [
                        keys.unique(brand, t, s, field(unique, p))
                        for t, s in parts
                        for p in platforms
                    ],
                )
                distinct.append(((brand, window), (unique, ALL_PLATFORMS)))
    if distinct:
        for (read, name), n in zip(distinct, _execute(pipe), strict=True):
            result[read][name] = int(n or 0)
    if only is None or any(name in only for name in CARE_READINGS):
        _read_care(client, keys, plan, reads, result, brands, end)
    return result


def read_fine_buckets(
    client: redis.Redis,
    keys: RedisKeys,
    brands: Sequence[str],
    starts: Sequence[int],
    only: Collection[str],
) -> dict[str, WindowCounts]:
    """Per brand, the ``only`` counters summed over the finest-tier buckets starting at
    ``starts`` (the early look at a tick's last seconds, every second; alerts.pipeline), added
    up in Redis, in one round trip."""
    tier = TIERS[0]
    parts = [(tier, start) for start in starts]
    sums = _sums_in_redis(client, keys, brands, [(b, tier, parts) for b in brands], only)
    return {brand: sums[(brand, tier)] for brand in brands}


Parts = list[tuple[int, int]]  # the buckets (tier, start) a window is read from


def _read_buckets(
    client: redis.Redis,
    keys: RedisKeys,
    plan: WindowPlan,
    brands: Sequence[str],
    end: Mapping[int, float],
    only: Collection[str] | None = None,
) -> tuple[list[tuple[str, int, Parts]], dict[tuple[str, int], WindowCounts]]:
    """Every (brand, window)'s counter sums, each window read from the fewest buckets
    (streams.windows.window_reads), and the buckets each was read from. A coarser tier is read
    only from when the workers began writing it (``tiers_since``, set by the first worker
    that writes it): what was counted before an upgrade is read from the buckets it was
    counted in. ``only``: just these counters, added up in Redis (all, added up here, by
    default)."""
    since = _tiers_since(client, keys)
    reads = []
    for window in plan.windows:
        own = plan.tier(window)
        parts: Parts = []
        for tier, start in window_reads(end[window], window, plan.tiers):
            if tier == own or start >= since.get(tier, math.inf):
                parts.append((tier, start))
            else:
                parts += [(own, fine) for fine in range(start, start + tier, own)]
        reads += [(brand, window, parts) for brand in brands]
    if only is not None:
        # A distinct count is read on the platforms its source counted anything on, the
        # response times on those that counted responses.
        wanted = {*only, *(UNIQUE_SOURCE[u] for u in only if u in UNIQUE_SOURCE)}
        if any(name in only for name in CARE_READINGS):
            wanted.add("responses")
        return reads, _sums_in_redis(client, keys, brands, reads, wanted)
    pipe = client.pipeline(transaction=False)
    asked: dict[tuple[str, int, int], int] = {}  # (brand, tier, start) -> its reply's place
    for brand, _, parts in reads:
        for tier, start in parts:
            if (brand, tier, start) not in asked:
                asked[(brand, tier, start)] = len(asked)
                pipe.hgetall(keys.bucket(brand, tier, start))
    replies = _execute(pipe)
    result = {
        (brand, window): sum_buckets(replies[asked[(brand, t, s)]] or {} for t, s in parts)
        for brand, window, parts in reads
    }
    return reads, result


def _sums_in_redis(
    client: redis.Redis,
    keys: RedisKeys,
    brands: Sequence[str],
    reads: Sequence[tuple[str, int, Parts]],
    only: Collection[str],
) -> dict[tuple[str, int], WindowCounts]:
    """The ``only`` counters' sums of every (brand, window) of ``reads``, added up in Redis
    (streams.store.window_sums): one script call a brand."""
    by_brand: dict[str, list[tuple[int, Parts]]] = defaultdict(list)
    for brand, window, parts in reads:
        by_brand[brand].append((window, parts))
    for attempt in (1, 2):
        if attempt == 2:
            load_sums(client)  # Redis has restarted since (or never ran it): loaded once
        pipe = client.pipeline(transaction=False)
        for brand in brands:
            queue_sums(
                pipe,
                [[keys.bucket(brand, t, s) for t, s in parts] for _, parts in by_brand[brand]],
                only,
            )
        try:
            replies = _execute(pipe)
            break
        except redis.exceptions.NoScriptError:
            if attempt == 2:
                raise  # Redis forgot it again: it says so, not zeros
    result = {}
    for brand, reply in zip(brands, replies, strict=True):
        windows = by_brand[brand]
        counts, refused = window_counts(reply, len(windows))
        for said in refused:
            _refused(said)
        for (window, _), sums in zip(windows, counts, strict=True):
            result[(brand, window)] = sums
    return result


def _tiers_since(client: redis.Redis, keys: RedisKeys) -> dict[int, float]:
    try:
        raw = client.hgetall(keys.tiers_since())
    except redis.ResponseError:
        return {}
    return {int(tier): float(at) for tier, at in (raw or {}).items()}


def mark_tiers_written(client: redis.Redis, keys: RedisKeys, plan: WindowPlan) -> None:
    """Record, once, from when this deployment writes each bucket tier (a worker calls it at
    start, before it counts anything). A deployment with no key yet (a first start) marks
    every tier from the beginning: there is nothing older to read another way, and reading
    its coarse tiers at once is what keeps its first day's reads few."""
    now = int(time.time())
    fresh = not client.exists(keys.tiers_since()) and not _any_key(client, keys)
    pipe = client.pipeline(transaction=False)
    for tier in plan.tiers:
        # From the next bucket of the tier: the current one may hold events counted before.
        pipe.hsetnx(keys.tiers_since(), str(tier), 0 if fresh else now - now % tier + tier)
    # Like every key, it expires; if it ever did, readers use the windows' own tiers (exact,
    # more reads) until a worker starts and marks the tiers again from then.
    pipe.expire(keys.tiers_since(), TIERS_MARK_KEPT)
    pipe.execute()


def _any_key(client: redis.Redis, keys: RedisKeys) -> bool:
    # Once per deployment (before its first mark): a whole SCAN when the deployment is new.
    return next(iter(client.scan_iter(match=f"{keys.prefix}:*", count=10_000)), None) is not None


TIERS_MARK_KEPT = 400 * 86400


@dataclass(frozen=True)
class RedisWindows:
    """The WindowReader on Redis (read_windows, one client for every read)."""

    client: redis.Redis
    keys: RedisKeys

    def windows(
        self, plan: WindowPlan, brands: Sequence[str], now: float
    ) -> dict[tuple[str, int], WindowCounts]:
        """Counts per (brand, window) of ``plan`` ending at ``now``."""
        return read_windows(self.client, self.keys, plan, brands, now)


_refused_reads: dict[str, float] = {}  # what a read was refused with -> when it was logged


def _execute(pipe: Any) -> list[Any]:
    """A read pipeline's replies, a key Redis refuses to read (one holding another type)
    answering None: one bad key must not blind the boards and the rules to every brand.
    Redis being away still raises."""
    replies = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and refused_for_now(reply):
            raise reply  # Redis cannot answer now: the reader says so, it does not show zeros
        if isinstance(reply, redis.exceptions.NoScriptError):
            raise reply  # not a key's fault: the caller loads the script and reads again
        if isinstance(reply, redis.ResponseError):
            _refused(str(reply))
        elif isinstance(reply, Exception):
            raise reply
    return [None if isinstance(r, Exception) else r for r in replies]


def _refused(reply: str) -> None:
    now = time.monotonic()
    said = _refused_reads.get(reply)
    if said is None or now - said > 60:  # once a minute: every scrape reads it
        if len(_refused_reads) > 1000:
            _refused_reads.clear()
        _refused_reads[reply] = now
        log.warning("rolling counts: a key could not be read, shown as empty: %s", reply)


def _pfcount(pipe: Any, keys: Sequence[str]) -> None:
    # redis-py's cluster pipeline refuses pfcount() for any multi-key use; the command itself
    # is fine there, as one brand's keys share a hash slot.
    pipe.execute_command("PFCOUNT", *keys)


def _read_care(
    client: redis.Redis,
    keys: RedisKeys,
    plan: WindowPlan,
    reads: Sequence[tuple[str, int, list[tuple[int, int]]]],
    result: dict[tuple[str, int], WindowCounts],
    brands: Sequence[str],
    end: Mapping[int, float],
) -> None:
    """Add response-time quantiles (per window) and the backlog (now, the same in every
    window) per platform and for "all", in two round trips."""
    pipe = client.pipeline(transaction=False)
    for brand in brands:
        pipe.smembers(keys.care_platforms(brand))
    waiting_platforms = dict(zip(brands, (sorted(p or ()) for p in _execute(pipe)), strict=True))
    pipe = client.pipeline(transaction=False)
    asks: list[tuple[str, str, str, int | None]] = []  # (what, brand, platform, window)
    for brand, platforms in waiting_platforms.items():
        for platform in platforms:
            pipe.zcard(keys.waiting(brand, platform))
            pipe.zrange(keys.waiting(brand, platform), 0, 0, withscores=True)
            asks.append(("backlog", brand, platform, None))
    for brand, window, parts in reads:
        counts = result[(brand, window)]
        answered = [p for (c, p), n in counts.items() if c == "responses" and n > 0]
        for platform in [*answered, ALL_PLATFORMS] if answered else []:
            shown = answered if platform == ALL_PLATFORMS else [platform]
            sets = [keys.response_times(brand, t, s, p) for t, s in parts for p in shown]
            pipe.zunion(sets, withscores=True)
            asks.append(("times", brand, platform, window))
    replies = iter(_execute(pipe))
    backlogs: dict[str, dict[str, tuple[int, float | None]]] = {}
    for what, brand, platform, asked_window in asks:
        if what == "backlog":
            waiting, oldest = int(next(replies) or 0), next(replies)
            backlogs.setdefault(brand, {})[platform] = (waiting, oldest[0][1] if oldest else None)
            continue
        assert asked_window is not None
        seconds = [score for _, score in next(replies) or ()]
        for name, value in response_quantiles(seconds).items():
            result[(brand, asked_window)][(name, platform)] = value
    for brand, per_platform in backlogs.items():
        oldest_all = min((t for _, t in per_platform.values() if t is not None), default=None)
        waiting_all = sum(n for n, _ in per_platform.values())
        for window in plan.windows:
            now = end[window]
            rows = {
                **{p: backlog(n, t, now) for p, (n, t) in per_platform.items()},
                ALL_PLATFORMS: backlog(waiting_all, oldest_all, now),
            }
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
    reads = [(w, window_buckets(now, w, plan.tier(w))) for w in plan.windows]
    pipe = client.pipeline(transaction=False)
    for window, starts in reads:
        for start in starts:
            pipe.hgetall(keys.dimension_bucket(brand, plan.tier(window), start))
    replies = iter(_execute(pipe))
    prefix = f"{dimension}:"
    return {
        window: sum_buckets(
            _dimension_only(bucket or {}, prefix) for bucket in (next(replies) for _ in starts)
        )
        for window, starts in reads
    }


def _dimension_only(bucket: dict[str, str], prefix: str) -> dict[str, str]:
    # ``<counter>|content:<id>`` -> ``<counter>|<id>``: the counter never holds "|", the id may
    # hold anything (another "|", "content:", "=").
    kept = {}
    for name, n in bucket.items():
        counter, _, member = name.partition("|")
        if member.startswith(prefix):
            kept[f"{counter}|{member.removeprefix(prefix)}"] = n
    return kept


__all__ = [
    "AppliedBatch",
    "AsyncCountStore",
    "CountedEvent",
    "RedisKeys",
    "RedisWindows",
    "read_dimension_windows",
    "read_windows",
]
