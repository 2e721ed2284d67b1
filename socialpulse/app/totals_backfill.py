"""The running totals of an imported history, as the samples a worker would have exported had
it watched then: OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

Each total (``socialpulse_counted_<counter>_total{brand, platform}``, the worker's own names
and labels, with ``job="socialpulse-worker"`` and ``instance="history"``) gets a sample every
``step`` seconds on the minute grid, from the hour of the history's first event (0 then) to
the hour after its last: the sample at ``t`` is everything counted with an event time before
``t``. So a window between two grid points is exact (the last hour at an hour boundary), and the
boards' queries, which subtract the last total before a window from the newest, read the
imported past as they read live totals. As the worker does, mentions have a total on every
configured platform of the brand, 0 where none came (the boards tell from it that a total began
inside a window). Pure: the counts in, text out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from socialpulse.core.exposition import LabelText
from streams.counters import CAN_FALL, RUNNING_TOTALS, STARTS_AT_ZERO
from streams.store.memory_store import MemoryCounts

GRID = 60  # the counts' bucket tier the totals are summed from, and the finest step
HOUR = 3600
JOB, INSTANCE = "socialpulse-worker", "history"

Key = tuple[str, str, str]  # (counter, brand, platform)


@dataclass(frozen=True)
class HistoryTotals:
    """Each total's additions by minute, and the grid its samples are on (``begin`` to
    ``end``, every ``step`` seconds); samples are made as they are written, so a year of
    minutes takes no more memory than the minutes that counted something."""

    begin: int
    end: int
    step: int
    minutes: dict[Key, list[tuple[int, float]]]

    def samples(self, key: Key) -> Iterator[tuple[int, float]]:
        """(unix second, running total) on the grid: what was counted before each point."""
        ordered, total, index = self.minutes[key], 0.0, 0
        for at in range(self.begin, self.end + 1, self.step):
            while index < len(ordered) and ordered[index][0] < at:
                total += ordered[index][1]
                index += 1
            yield at, total

    def final(self, key: Key) -> float:
        """The total at the grid's end."""
        return sum(amount for start, amount in self.minutes[key] if start < self.end)


def history_totals(
    counts: MemoryCounts,
    platforms: Mapping[str, Sequence[str]],
    step: int = GRID,
    until: int | None = None,
) -> HistoryTotals | None:
    """The history's totals per (counter, brand, platform), on the ``step`` grid (whole
    minutes dividing an hour) from the hour of its first event to the hour after its last,
    or to ``until`` (an hour's start) if that is earlier: Prometheus must not be given
    samples of its head's time (the last three hours). Brands not in ``platforms`` are left
    out (as a strict worker dead-letters them); None when nothing is left."""
    if step % GRID or HOUR % step:
        raise ValueError(f"step: {step} s is not whole minutes that divide an hour")
    per_minute: dict[Key, dict[int, float]] = defaultdict(dict)
    for (brand, tier, start), fields in counts.buckets.items():
        if tier != GRID or brand not in platforms:
            continue
        for name, amount in fields.items():
            counter, _, platform = name.partition("|")
            if counter in RUNNING_TOTALS and platform:
                minutes = per_minute[(counter, brand, platform)]
                minutes[start] = minutes.get(start, 0.0) + amount
    if not per_minute:
        return None
    first = min(min(m) for m in per_minute.values())
    last = max(max(m) for m in per_minute.values())
    # From the hour of the first event to the hour after the last: a per-hour query is then
    # exact at both ends too (a total has a sample at each hour's start, 0 before any event).
    begin = (first // HOUR) * HOUR
    end = -(-(last + GRID) // HOUR) * HOUR
    if until is not None:
        end = min(end, (until // HOUR) * HOUR)
    if end <= begin:
        return None
    for brand, configured in platforms.items():
        if any(key[1] == brand for key in per_minute):
            for platform in configured:
                per_minute.setdefault((STARTS_AT_ZERO, brand, platform), {})
    return HistoryTotals(
        begin, end, step, {key: sorted(m.items()) for key, m in sorted(per_minute.items())}
    )


def _number(value: float) -> str:
    if value.is_integer() and math.isfinite(value):
        return str(int(value))
    return repr(round(value, 9))


def openmetrics(totals: HistoryTotals | None) -> Iterator[str]:
    """The totals as OpenMetrics text, a family at a time, each series' samples in time
    order, ending with ``# EOF``."""
    escape = LabelText()
    by_counter: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for counter, brand, platform in totals.minutes if totals else ():
        by_counter[counter].append((brand, platform))
    for counter in sorted(by_counter):
        family = f"socialpulse_counted_{counter}"
        kind = "gauge" if counter in CAN_FALL else "counter"
        sample = family if kind == "gauge" else f"{family}_total"
        yield f"# HELP {family} Running total of {counter} (imported history).\n"
        yield f"# TYPE {family} {kind}\n"
        for brand, platform in sorted(by_counter[counter]):
            labels = (
                f'brand="{escape(brand)}",instance="{INSTANCE}",job="{JOB}",'
                f'platform="{escape(platform)}"'
            )
            assert totals is not None
            for at, value in totals.samples((counter, brand, platform)):
                yield f"{sample}{{{labels}}} {_number(value)} {at}\n"
    yield "# EOF\n"
