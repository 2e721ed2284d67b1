"""Event-time bucket maths for rolling windows (pure functions, no I/O).

A rolling window of W seconds ending now is the sum of the fixed buckets whose start lies in
(now - W, now]. Each window is served by the finest bucket size (tier) that keeps it at most
:data:`MAX_BUCKETS` buckets: 1m-15m windows by 10 s buckets, 1h by 1 min, 24h by 5 min. An event
increments one bucket per tier in use, so reading a 24h window is 288 buckets, not 8,640.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal

TIERS = (10, 60, 300, 3600)
MAX_BUCKETS = 300
# Hour buckets are also written when a window is this long (6h+): a 24h window is then read as
# 23 hours and its edges' 5-minute buckets.
READ_TIER, READ_TIER_FROM = 3600, 6 * 3600
# The evaluation reads windows ending at its tick, seconds after the tick (settle, a long round,
# a short catch-up): buckets outlive the windows ending now by this much, or the oldest bucket
# of a window read late would be gone (undercounting it).
READ_MARGIN = 120
# Dedupe sets are per event-time minute: a redelivery carries the same ts, so the same set.
DEDUPE_BUCKET = 60


def bucket_start(ts: datetime | float, bucket_seconds: int) -> int:
    """Unix second at which the bucket holding ``ts`` starts."""
    epoch = int(ts.timestamp() if isinstance(ts, datetime) else ts)
    return epoch - epoch % bucket_seconds


def tier_for(window_seconds: int) -> int | None:
    """The finest bucket size that divides the window into at most MAX_BUCKETS, or None."""
    for tier in TIERS:
        if window_seconds % tier == 0 and window_seconds // tier <= MAX_BUCKETS:
            return tier
    return None


def window_buckets(now: float, window_seconds: int, bucket_seconds: int) -> list[int]:
    """Starts of the buckets that make up the window ending at ``now``, newest first."""
    newest = bucket_start(now, bucket_seconds)
    return [newest - i * bucket_seconds for i in range(window_seconds // bucket_seconds)]


def window_reads(now: float, window_seconds: int, tiers: Iterable[int]) -> list[tuple[int, int]]:
    """The fewest buckets (tier, start) of ``tiers`` that add up to exactly the window ending
    at ``now`` as its own (finest) tier serves it: every event increments one bucket of each
    tier, so a coarser bucket wholly inside the window is the sum of the finer ones in it.
    A 24h window of 5-minute buckets is read as 23 hours and the edges' 5 minutes (about 46
    reads, not 288), where an hour tier is written."""
    ordered = sorted(set(tiers))
    own = tier_for(window_seconds)
    if own is None or own not in ordered:
        raise ValueError(f"no bucket tier of {ordered} serves a {window_seconds}s window")
    newest = bucket_start(now, own)
    low, high = newest - window_seconds + own, newest + own  # [low, high) is the window
    coarser = [t for t in ordered if t >= own and t % own == 0]
    return _cover(low, high, sorted(coarser, reverse=True))


def _cover(low: int, high: int, tiers: list[int]) -> list[tuple[int, int]]:
    # [low, high) on the grid of tiers[-1]: the coarsest tier's whole buckets in the middle,
    # the edges by the finer ones.
    if low >= high:
        return []
    tier, finer = tiers[0], tiers[1:]
    if not finer:  # the window's own tier: low and high are on its grid
        return [(tier, start) for start in range(low, high, tier)]
    first = -(-low // tier) * tier
    last = high // tier * tier
    if first >= last:
        return _cover(low, high, finer)
    middle = [(tier, start) for start in range(first, last, tier)]
    return _cover(low, first, finer) + middle + _cover(last, high, finer)


@dataclass(frozen=True)
class WindowPlan:
    """Which bucket tiers serve the configured windows, and how long each bucket must live."""

    windows: tuple[int, ...]
    allowed_lateness: int
    max_future: int = 300

    @classmethod
    def of(cls, windows: Iterable[int], allowed_lateness: int, max_future: int = 300) -> WindowPlan:
        """A plan for these windows; raises ValueError for a window no tier can serve."""
        ordered = tuple(sorted(set(windows)))
        for window in ordered:
            if tier_for(window) is None:
                raise ValueError(
                    f"window of {window}s is not a whole number of 10s buckets "
                    f"or is longer than {MAX_BUCKETS} hours"
                )
        return cls(ordered, allowed_lateness, max_future)

    def tier(self, window_seconds: int) -> int:
        """Bucket size serving this window."""
        tier = tier_for(window_seconds)
        if tier is None:
            raise ValueError(f"no bucket tier serves a {window_seconds}s window")
        return tier

    @cached_property
    def tiers(self) -> tuple[int, ...]:
        """Bucket sizes written, finest first: those serving the windows, and hours when a
        window is long enough that reading it by hours (window_reads) saves reads."""
        serving = {self.tier(w) for w in self.windows}
        if max(self.windows) >= READ_TIER_FROM:
            serving.add(READ_TIER)
        return tuple(sorted(serving))

    @cached_property
    def _longest(self) -> dict[int, int]:
        # Computed once: the hot path asks for every event and tier. A tier that serves no
        # window of its own is read for the longest windows.
        longest = max(self.windows)
        return {
            t: max((w for w in self.windows if self.tier(w) == t), default=longest)
            for t in self.tiers
        }

    def bucket_expires_at(self, start: int, tier: int) -> int:
        """Unix time after which no window reads the bucket (start, tier) any more: the windows
        ending now, and those the evaluation reads up to ``READ_MARGIN`` seconds late."""
        return start + tier + self._longest[tier] + READ_MARGIN

    def dedupe_expires_at(self, ts: float) -> int:
        """Unix time after which an event id at ``ts`` need not be remembered: any redelivery
        arriving later is older than the allowed lateness and dropped as too late anyway."""
        return bucket_start(ts, DEDUPE_BUCKET) + DEDUPE_BUCKET + self.allowed_lateness

    def timing(self, ts: float, now: float) -> Literal["on_time", "too_late", "future"]:
        """Whether an event at ``ts`` still counts at ``now``: within the allowed lateness and
        not further ahead than clock skew explains."""
        if ts < now - self.allowed_lateness:
            return "too_late"
        if ts > now + self.max_future:
            return "future"
        return "on_time"
