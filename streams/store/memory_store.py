"""A recorded event stream's rolling counts, in memory, with the bucket maths of the Redis store.

``socialpulse backtest`` replays a JSONL file of raw events through this instead of Redis: the
same decoding (streams.batch), the same fields per event (streams.counters) and the same windows
(streams.windows), so the detector sees what the live worker would have seen. Differences, by
design: distinct counts are exact sets (Redis keeps HyperLogLogs, ~0.81% error), and customer
care matching (response times, backlog) is not replayed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from streams.counted import AppliedBatch, CountedEvent
from streams.counters import ALL_PLATFORMS, UNIQUE_SOURCE, WindowCounts, field
from streams.events import MetricSnapshot
from streams.snapshots import ObjectState, Step, step
from streams.windows import DEDUPE_BUCKET, WindowPlan, bucket_start, window_buckets


class MemoryCounts:
    """Buckets per (brand, tier, start) holding ``field -> amount``, fed event by event or in
    batches: a CountStore and a WindowReader (streams.store.base)."""

    def __init__(self, tiers: Iterable[int], author_limit: int = 0):
        self.tiers = tuple(tiers)
        self.author_limit = author_limit
        self.buckets: dict[tuple[str, int, int], dict[str, float]] = defaultdict(dict)
        self.uniques: dict[tuple[str, int, int, str], set[str]] = defaultdict(set)
        self.gauges: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
        self.seen: set[tuple[str, str, int, str]] = set()
        self.rates: dict[tuple[str, int, str], int] = defaultdict(int)
        self.objects: dict[tuple[str, str, str], ObjectState] = {}

    async def apply_snapshots(
        self, snapshots: Sequence[MetricSnapshot], plan: WindowPlan, track_for: int, now: float
    ) -> list[Step]:
        """Count metric snapshots by the rules of streams.snapshots, as the Redis store does
        (an object is forgotten once ``track_for`` has passed since its tracking started;
        per campaign and content item counts are not kept in memory, as for events)."""
        return [self.count_snapshot(s, plan, track_for, now) for s in snapshots]

    def count_snapshot(
        self, snapshot: MetricSnapshot, plan: WindowPlan, track_for: int, now: float
    ) -> Step:
        """Count one snapshot (see :meth:`apply_snapshots`); what it did."""
        key = (snapshot.brand, snapshot.platform, snapshot.object_id)
        state = self.objects.get(key)
        if state is not None and state.since + track_for < now:
            del self.objects[key]
            state = None
        result = step(state, snapshot, plan, track_for, now)
        if result.state is not None:
            self.objects[key] = result.state
        for piece in result.pieces:
            for tier in self.tiers:
                bucket = self.buckets[(snapshot.brand, tier, bucket_start(piece.slot, tier))]
                for name, amount in piece.fields:
                    bucket[name] = bucket.get(name, 0) + (1 if amount is None else amount)
        return result

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        """Count a batch (the CountStore contract); nothing fails in memory."""
        statuses = [(event, self.count(event)) for event in events]
        return AppliedBatch(
            counted=[event for event, status in statuses if status == "counted"],
            filtered=[event for event, status in statuses if status == "filtered"],
        )

    def windows(
        self, plan: WindowPlan, brands: Sequence[str], now: float
    ) -> dict[tuple[str, int], WindowCounts]:
        """Every (brand, window) of ``plan`` ending at ``now`` (the WindowReader contract)."""
        return {
            (brand, window): self.window(brand, window, plan.tier(window), now)
            for brand in brands
            for window in plan.windows
        }

    def count(self, event: CountedEvent) -> str:
        """Count one event as the store's script does: "duplicate", "counted" or "filtered"."""
        # As the store's dedupe sets: per event type and event-time minute (a redelivery
        # carries the same event time, so the same minute).
        seen = (
            event.brand,
            event.event_type,
            bucket_start(event.ts, DEDUPE_BUCKET),
            event.event_id,
        )
        if seen in self.seen:
            return "duplicate"
        self.seen.add(seen)
        fields, status = event.fields, "counted"
        if self.author_limit and event.author is not None:
            # Keyed by the author as given, as the Redis store's per-minute hash is.
            rate_key = (event.brand, bucket_start(event.ts, 60), event.author)
            self.rates[rate_key] += 1
            if self.rates[rate_key] > self.author_limit:
                fields, status = event.filtered_fields, "filtered"
        for tier in self.tiers:
            start = bucket_start(event.ts, tier)
            bucket = self.buckets[(event.brand, tier, start)]
            for name, amount in fields:
                bucket[name] = bucket.get(name, 0) + (1 if amount is None else amount)
            if status == "counted" and event.unique:
                unique_field, member = event.unique
                self.uniques[(event.brand, tier, start, unique_field)].add(member)
        if status == "counted" and event.gauge:
            name, value = event.gauge
            newest = self.gauges[event.brand].get(name)
            if newest is None or event.ts >= newest[0]:
                self.gauges[event.brand][name] = (event.ts, value)
        return status

    def window(self, brand: str, window_seconds: int, tier: int, now: float) -> WindowCounts:
        """Counts of the brand over the window ending at ``now``, as ``read_windows`` gives them
        (gauges as of ``now``; distinct counts per platform and over all platforms)."""
        starts = window_buckets(now, window_seconds, tier)
        total: WindowCounts = {}
        for start in starts:
            for name, amount in self.buckets.get((brand, tier, start), {}).items():
                counter, _, platform = name.partition("|")
                key = (counter, platform)
                total[key] = total.get(key, 0) + amount
        for name, (ts, value) in self.gauges.get(brand, {}).items():
            if ts <= now:
                counter, _, platform = name.partition("|")
                total[(counter, platform)] = value
        for unique, source in UNIQUE_SOURCE.items():
            platforms = [p for (c, p), n in total.items() if c == source and n > 0]
            union: set[str] = set()
            for platform in platforms:
                members = self._members(brand, tier, starts, field(unique, platform))
                total[(unique, platform)] = len(members)
                union |= members
            if platforms:
                total[(unique, ALL_PLATFORMS)] = len(union)
        return {k: int(v) if float(v).is_integer() else v for k, v in total.items()}

    def _members(self, brand: str, tier: int, starts: Sequence[int], name: str) -> set[str]:
        members: set[str] = set()
        for start in starts:
            members |= self.uniques.get((brand, tier, start, name), set())
        return members
