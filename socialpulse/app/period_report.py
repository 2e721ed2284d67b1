"""``socialpulse report``: every counter and KPI of a brand over a month, a quarter, a
campaign or any days, from the exact daily rollups (streams.store.day_rollups), against the
span just before. Pure: day hashes in, rows and text out.

Counters are summed over the span's days as decimals (money stays exact to the cent), then the
KPIs of kpis.yaml are computed over the sums, as for a window: a ratio of sums, not a mean of
daily ratios. Distinct counts (unique authors, reach) and last known values (followers) are
not kept by day and are left out.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from socialpulse.app.kpi_report import aligned, shown
from streams.counters import ALL_COUNTERS, OPTIONAL_COUNTERS, UNIQUE_SOURCE
from streams.formulas import Value
from streams.kpis import DerivedKpi

DAY = 86400
# What the daily rollups keep: counters each event adds to (not distinct counts or gauges).
KEPT = tuple(c for c in ALL_COUNTERS if c not in {*UNIQUE_SOURCE, *OPTIONAL_COUNTERS})


@dataclass(frozen=True)
class Span:
    """Whole UTC days, ``first`` to ``last`` included, and how to name them."""

    first: date
    last: date
    label: str

    @property
    def days(self) -> list[int]:
        """The days' starts (unix seconds)."""
        start = int(
            datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC).timestamp()
        )
        return [start + n * DAY for n in range((self.last - self.first).days + 1)]

    def before(self) -> Span:
        """The span just before: the previous month or quarter, else as many days."""
        if re.fullmatch(r"\d{4}-\d{2}", self.label):
            last = self.first - timedelta(days=1)
            return month(f"{last.year:04d}-{last.month:02d}")
        if re.fullmatch(r"\d{4}-Q[1-4]", self.label):
            last = self.first - timedelta(days=1)
            return quarter(f"{last.year:04d}-Q{(last.month - 1) // 3 + 1}")
        length = (self.last - self.first).days + 1
        last = self.first - timedelta(days=1)
        first = last - timedelta(days=length - 1)
        return Span(first, last, f"{first.isoformat()}..{last.isoformat()}")


def month(text: str) -> Span:
    """``2026-11``: that month's days; ValueError naming the form otherwise."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"--period {text!r} is not a month: give it as 2026-11")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Span(first, following - timedelta(days=1), f"{first.year:04d}-{first.month:02d}")


def quarter(text: str) -> Span:
    """``2026-Q4``: that quarter's days; ValueError naming the form otherwise."""
    found = re.fullmatch(r"(\d{4})-?[Qq]([1-4])", text.strip())
    if not found:
        raise ValueError(f"--quarter {text!r} is not a quarter: give it as 2026-Q4")
    year, n = int(found.group(1)), int(found.group(2))
    first = date(year, 3 * n - 2, 1)
    after = date(year + 1, 1, 1) if n == 4 else date(year, 3 * n + 1, 1)
    return Span(first, after - timedelta(days=1), f"{year:04d}-Q{n}")


def days_between(start: str, end: str) -> Span:
    """``--from 2026-11-03 --to 2026-11-16`` (both included); ValueError naming the problem."""
    try:
        first, last = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(
            f"--from {start!r} --to {end!r}: give days as 2026-11-03 (both included)"
        ) from None
    if last < first:
        raise ValueError(f"--to {end} is before --from {start}")
    return Span(first, last, f"{first.isoformat()}..{last.isoformat()}")


def _day(start: int) -> date:
    return datetime.fromtimestamp(start, UTC).date()


def campaign_span(dimensions: Mapping[int, Mapping[str, Any]], campaign: str) -> Span | None:
    """The days from the campaign's first count to its last (None: nothing counted)."""
    member = f"|campaign:{campaign}"
    days = [day for day, fields in dimensions.items() if any(k.endswith(member) for k in fields)]
    if not days:
        return None
    first, last = _day(min(days)), _day(max(days))
    return Span(first, last, f"campaign {campaign}, {first.isoformat()}..{last.isoformat()}")


def summed(
    rows: Mapping[int, Mapping[str, Any]], days: Sequence[int], member: str | None = None
) -> dict[str, Decimal]:
    """Counter -> its sum over ``days``: of every platform, or of one dimension member
    (``campaign:spring``, ``content:post-9``), exactly (decimals)."""
    totals: dict[str, Decimal] = {}
    for day in days:
        for name, amount in rows.get(day, {}).items():
            counter, _, where = name.partition("|")
            if counter not in KEPT or (member is not None and where != member):
                continue
            if member is None and ":" in where:
                continue
            totals[counter] = totals.get(counter, Decimal(0)) + Decimal(str(amount))
    return totals


def members(
    rows: Mapping[int, Mapping[str, Any]], days: Sequence[int], dimension: str
) -> list[str]:
    """The dimension's members (content items, campaigns) counted on these days."""
    found: dict[str, None] = {}
    for day in days:
        for name in rows.get(day, {}):
            where = name.partition("|")[2]
            if where.startswith(f"{dimension}:"):
                found[where] = None
    return list(found)


@dataclass(frozen=True)
class Row:
    """One line of a report: a counter or KPI over the span and the span before."""

    name: str
    unit: str  # count, ratio, per_minute, currency
    current: Value
    previous: Value

    @property
    def change(self) -> Value:
        """(current - previous) / previous, or None where it has no meaning."""
        if self.current is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return (self.current - self.previous) / abs(self.previous)


def rows(
    current: Mapping[str, Decimal],
    previous: Mapping[str, Decimal],
    kpis: Sequence[DerivedKpi],
    seconds: tuple[int, int],
) -> list[Row]:
    """Counters (those with a count in either span), then every KPI, over both spans."""
    out = [
        Row(c, "count", float(current.get(c, 0)), float(previous.get(c, 0)))
        for c in KEPT
        if c in current or c in previous
    ]
    values = []
    for totals, span_seconds in ((current, seconds[0]), (previous, seconds[1])):
        named = {c: float(totals.get(c, 0)) for c in KEPT}
        named |= {"window_seconds": float(span_seconds), "window_minutes": span_seconds / 60}
        values.append(named)
    readable = {*KEPT, "window_seconds", "window_minutes"}
    for kpi in kpis:
        if not kpi.formula.names <= readable:
            continue  # reads a distinct count or a gauge, which days do not keep
        now, before = kpi.formula.evaluate(values[0]), kpi.formula.evaluate(values[1])
        out.append(Row(kpi.name, kpi.unit, now, before))
    return out


def table(title: str, spans: tuple[Span, Span], lines: Sequence[Row]) -> str:
    """The report for people: a row per counter and KPI, this span, the one before, change."""
    header = ["", spans[0].label, spans[1].label, "change"]
    body = [
        [
            r.name,
            shown(r.current, r.unit),
            shown(r.previous, r.unit),
            "-" if r.change is None else f"{r.change:+.1%}",
        ]
        for r in lines
    ]
    return "\n".join([title, *aligned([header, *body])])


def _finite(value: Value) -> Value:
    return None if value is None or not math.isfinite(value) else value


def as_json(brand: str, what: str, spans: tuple[Span, Span], lines: Sequence[Row]) -> str:
    """The report for programs: every row with its current, previous and change (null where
    there is none)."""
    return json.dumps(
        {
            "brand": brand,
            "of": what,
            "span": {
                "label": spans[0].label,
                "from": spans[0].first.isoformat(),
                "to": spans[0].last.isoformat(),
            },
            "previous": {
                "label": spans[1].label,
                "from": spans[1].first.isoformat(),
                "to": spans[1].last.isoformat(),
            },
            "rows": {
                r.name: {
                    "unit": r.unit,
                    "current": _finite(r.current),
                    "previous": _finite(r.previous),
                    "change": _finite(r.change),
                }
                for r in lines
            },
        },
        sort_keys=True,
        allow_nan=False,
    )


def as_csv(lines: Sequence[Row]) -> str:
    """The report as CSV: name, unit, current, previous, change (empty where there is none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "unit", "current", "previous", "change"])
    for r in lines:
        writer.writerow(
            [
                r.name,
                r.unit,
                *(
                    "" if v is None or not math.isfinite(v) else repr(v)
                    for v in (r.current, r.previous, r.change)
                ),
            ]
        )
    return out.getvalue()
