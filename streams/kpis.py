"""A brand's KPIs over one window: counters per platform, and derived KPIs per platform and for
all platforms together (pure). /metrics and ``socialpulse kpis`` both read this, so they agree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from streams.counters import (
    ALL_COUNTERS,
    ALL_PLATFORMS,
    CARE_READINGS,
    COMPETITOR_MENTIONS,
    KIND_COUNTER,
    OPTIONAL_COUNTERS,
    UNIQUE_SOURCE,
    WindowCounts,
)
from streams.formulas import Formula, Value

__all__ = [
    "ALL_PLATFORMS",
    "BrandSnapshot",
    "DerivedKpi",
    "brand_snapshots",
    "busiest_columns",
    "snapshot",
    "with_competitor_mentions",
]
# Values whose "all platforms" value is read from the store, not summed over platforms.
READ_FOR_ALL = frozenset([*UNIQUE_SOURCE, *CARE_READINGS])
# Names a formula may read besides the counters.
WINDOW_NAMES = ("window_seconds", "window_minutes")


@dataclass(frozen=True)
class DerivedKpi:
    """A KPI declared in config/kpis.yaml: a formula over counters in the same window."""

    name: str
    formula: Formula
    unit: str  # count, ratio (0..1), per_minute, currency
    help: str
    windows: frozenset[int] | None = None  # window seconds it is computed for; None: all


@dataclass(frozen=True)
class BrandSnapshot:
    """One brand's values over one window."""

    brand: str
    window_seconds: int
    platforms: tuple[str, ...]  # the per-platform rows; ALL_PLATFORMS is added for derived KPIs
    counters: dict[str, dict[str, float]]  # platform -> counter -> count or amount
    derived: dict[str, dict[str, Value]]  # platform (or "all") -> kpi -> value or None
    totals: dict[str, float]  # counter -> its value over all platforms (a sum, or read as such)


_ALWAYS = tuple(c for c in ALL_COUNTERS if c not in OPTIONAL_COUNTERS)


def snapshot(
    brand: str,
    window_seconds: int,
    counts: WindowCounts,
    configured_platforms: Iterable[str],
    kpis: Sequence[DerivedKpi],
    only: Collection[str] | None = None,
) -> BrandSnapshot:
    """Counters and derived KPIs of a brand over a window, from its summed buckets.

    Configured platforms always appear (zeros when quiet); others appear once they have counts.
    The "all" row adds counters across platforms first, then applies the formula: a ratio of
    sums, not a sum of ratios. ``only``: the counters the caller reads (the KPIs' formulas
    among them); the others are left out (the alert evaluation reads a few of dozens).
    """
    seen = (p for _, p in counts if p != ALL_PLATFORMS)
    platforms = tuple(dict.fromkeys([*configured_platforms, *seen]))
    always = _ALWAYS if only is None else tuple(c for c in _ALWAYS if c in only)
    optional = OPTIONAL_COUNTERS if only is None else [c for c in OPTIONAL_COUNTERS if c in only]
    # Optional values (followers, competitor mentions) appear only where known.
    counters = {
        p: {
            **{c: counts.get((c, p), 0) for c in always},
            **{c: counts[(c, p)] for c in optional if (c, p) in counts},
        }
        for p in platforms
    }
    # Distinct counts do not add up across platforms: their "all" is the union, read as such.
    # So do quantiles and the care backlog: the store reads their "all" too.
    totals: dict[str, float] = {
        c: counts.get((c, ALL_PLATFORMS), 0)
        if c in READ_FOR_ALL
        else sum(row.get(c, 0) for row in counters.values())
        for c in ALL_COUNTERS
        if (only is None or c in only)
        and (c not in OPTIONAL_COUNTERS or any(c in row for row in counters.values()))
    }
    window = {"window_seconds": float(window_seconds), "window_minutes": window_seconds / 60}
    chosen = [kpi for kpi in kpis if kpi.windows is None or window_seconds in kpi.windows]
    derived = {}
    for platform, row in [*counters.items(), (ALL_PLATFORMS, totals)]:
        values = {**row, **window}
        derived[platform] = {kpi.name: kpi.formula.evaluate(values) for kpi in chosen}
    return BrandSnapshot(brand, window_seconds, platforms, counters, derived, totals)


def brand_snapshots(
    brand: str,
    counts_by_window: dict[int, WindowCounts],
    configured_platforms: Iterable[str],
    kpis: Sequence[DerivedKpi],
    only: Collection[str] | None = None,
) -> dict[int, BrandSnapshot]:
    """A brand's snapshot for every window (``only``: as for :func:`snapshot`). A platform
    with counts in any window gets a row in all of them, so its series do not come and go as
    events age out of the shorter windows."""
    seen = (p for counts in counts_by_window.values() for _, p in counts if p != ALL_PLATFORMS)
    platforms = list(dict.fromkeys([*configured_platforms, *seen]))
    return {
        window: snapshot(brand, window, counts, platforms, kpis, only)
        for window, counts in counts_by_window.items()
    }


def with_competitor_mentions(
    counts: Mapping[tuple[str, int], WindowCounts],
    competitors: Mapping[str, Sequence[str]],
) -> dict[tuple[str, int], WindowCounts]:
    """Counts per (brand, window) with ``competitor_mentions`` per platform added for brands
    that have competitors: the sum of their competitors' mentions on that platform, on every
    platform where the brand or a competitor has counts (share of voice reads it)."""
    result = {read: dict(window_counts) for read, window_counts in counts.items()}
    for (brand, window), window_counts in result.items():
        rivals = [counts.get((rival, window), {}) for rival in competitors.get(brand, ())]
        if not rivals:
            continue
        platforms = {p for c in [window_counts, *rivals] for _, p in c if p != ALL_PLATFORMS}
        for platform in platforms:
            window_counts[(COMPETITOR_MENTIONS, platform)] = sum(
                rival.get(("mentions", platform), 0) for rival in rivals
            )
    return result


def busiest_columns(counts: WindowCounts, n: int) -> list[str]:
    """The ``n`` columns (content items, campaigns) with the most events, busiest first (ties
    by name, so every worker picks the same ones)."""
    volume: dict[str, float] = {}
    for (counter, column), value in counts.items():
        if counter in KIND_COUNTER.values():  # events, not amounts
            volume[column] = volume.get(column, 0) + value
    return sorted(volume, key=lambda c: (-volume[c], c))[:n]
