"""Render a brand's KPI snapshot for people (a table) and for programs (JSON)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from socialpulse.core.config_types import format_duration
from streams.config import KpiSpec
from streams.counters import WindowCounts
from streams.formulas import Value
from streams.kpis import ALL_PLATFORMS, BrandSnapshot, busiest_columns


def shown(value: Value, unit: str) -> str:
    """A count, ratio or amount as a person reads it; "-" for no value."""
    if value is None:
        return "-"  # no value: a zero denominator
    if unit == "ratio":
        return f"{value:.1%}"
    if unit in ("per_minute", "currency"):
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def top_columns(counts: WindowCounts, n: int) -> WindowCounts:
    """Counts of the ``n`` columns (content items, campaigns) with the most events."""
    keep = set(busiest_columns(counts, n))
    return {key: value for key, value in counts.items() if key[1] in keep}


def kpi_table(snap: BrandSnapshot, specs: Sequence[KpiSpec], by: str = "platform") -> str:
    """Counters and KPIs as rows, platforms or campaigns (and "all") as columns."""
    columns = [*snap.platforms, ALL_PLATFORMS]
    rows: list[list[str]] = []
    for counter, total in snap.totals.items():
        rows.append(
            [
                counter,
                *(shown(snap.counters[p].get(counter), "count") for p in snap.platforms),
                shown(total, "count"),
            ]
        )
    for spec in specs:
        if spec.name in snap.derived[ALL_PLATFORMS]:  # computed for this window
            rows.append(
                [spec.name, *(shown(snap.derived[p][spec.name], spec.unit) for p in columns)]
            )
    title = f"{snap.brand}, last {format_duration(snap.window_seconds)}, by {by}"
    return "\n".join([title, *aligned([["", *columns], *rows])])


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def kpi_json(snap: BrandSnapshot, by: str = "platform") -> str:
    """The snapshot as one JSON object; KPIs without a value are null, and so would be any
    number that is not finite (JSON has no NaN or Infinity). ``by`` names what the columns
    are (platform or campaign); "all" is all of them together."""
    return json.dumps(
        _finite(
            {
                "brand": snap.brand,
                "by": by,
                "window": format_duration(snap.window_seconds),
                "counters": {**snap.counters, ALL_PLATFORMS: snap.totals},
                "kpis": snap.derived,
            }
        ),
        sort_keys=True,
        allow_nan=False,
    )


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
