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

from socialpulse.core.exposition import LabelText
from streams.counters import CAN_FALL, RUNNING_TOTALS, STARTS_AT_ZERO
from streams.store.memory_store import MemoryCounts

GRID = 60  # the counts' bucket tier the totals are summed from, and the finest step
HOUR = 3600
JOB, INSTANCE = "socialpulse-worker", "history"

Series = dict[tuple[str, str, str], list[tuple[int, float]]]


def history_totals(
    counts: MemoryCounts,
    platforms: Mapping[str, Sequence[str]],
    step: int = GRID,
) -> Series:
    """(counter, brand, platform) -> [(unix second, running total)] on the ``step`` grid (a
    divisor of an hour, in whole minutes) over the history's hours; brands not in
    ``platforms`` are left out (as a strict worker dead-letters them)."""
    if step % GRID or HOUR % step:
        raise ValueError(f"step: {step} s is not whole minutes that divide an hour")
    per_minute: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for (brand, tier, start), fields in counts.buckets.items():
        if tier != GRID or brand not in platforms:
            continue
        for name, amount in fields.items():
            counter, _, platform = name.partition("|")
            if counter in RUNNING_TOTALS and platform:
                minutes = per_minute[(counter, brand, platform)]
                minutes[start] = minutes.get(start, 0.0) + amount
    if not per_minute:
        return {}
    first = min(min(m) for m in per_minute.values())
    last = max(max(m) for m in per_minute.values())
    # From the hour of the first event to the hour after the last: a per-hour query is then
    # exact at both ends too (a total has a sample at each hour's start, 0 before any event).
    begin = (first // HOUR) * HOUR
    end = -(-(last + GRID) // HOUR) * HOUR
    for brand, configured in platforms.items():
        if any(key[1] == brand for key in per_minute):
            for platform in configured:
                per_minute.setdefault((STARTS_AT_ZERO, brand, platform), {})
    series: Series = {}
    for key, minutes in sorted(per_minute.items()):
        ordered = sorted(minutes.items())
        total, index, samples = 0.0, 0, []
        for at in range(begin, end + 1, step):
            while index < len(ordered) and ordered[index][0] < at:
                total += ordered[index][1]
                index += 1
            samples.append((at, total))
        series[key] = samples
    return series


def _number(value: float) -> str:
    if value.is_integer() and math.isfinite(value):
        return str(int(value))
    return repr(value)


def openmetrics(series: Series) -> Iterator[str]:
    """The series as OpenMetrics text, a family at a time, each series' samples in time order,
    ending with ``# EOF``."""
    escape = LabelText()
    by_counter: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for counter, brand, platform in series:
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
            for at, value in series[(counter, brand, platform)]:
                yield f"{sample}{{{labels}}} {_number(value)} {at}\n"
    yield "# EOF\n"
