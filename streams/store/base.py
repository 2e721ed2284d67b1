"""The count store contract: what the worker counts a batch into, and how windows are read back.

Two stores keep it: Redis (streams.store.redis_store, the worker's, exact across workers and
restarts) and memory (streams.store.memory_store, for backtests of recorded streams). Both
follow the same counting rules: an event counts once per event type and event-time minute, an
author over the rate limit adds its filtered fields instead, amounts add up, distinct members
count once, the newest gauge wins. tests/streams/store/test_count_store_contract.py runs the
same exact-count specifications against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streams.counted import AppliedBatch, CountedEvent
from streams.counters import WindowCounts
from streams.windows import WindowPlan


class CountStore(Protocol):
    """Applies batches of planned events."""

    async def apply(self, events: Sequence[CountedEvent]) -> AppliedBatch:
        """Count a batch: which events counted, which were filtered (author over the rate),
        which failed (nothing of theirs written); the rest were already counted."""
        ...


class WindowReader(Protocol):
    """Reads the rolling windows a store holds."""

    def windows(
        self, plan: WindowPlan, brands: Sequence[str], now: float
    ) -> dict[tuple[str, int], WindowCounts]:
        """Counts per (brand, window) of ``plan`` ending at ``now``, keyed (counter, platform)."""
        ...


__all__ = ["CountStore", "WindowReader"]
