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


def _shown(value: Value, unit: str) -> str:
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
                *(_shown(snap.counters[p].get(counter), "count") for p in snap.platforms),
                _shown(total, "count"),
            ]
        )
    for spec in specs:
        if spec.name in snap.derived[ALL_PLATFORMS]:  # computed for this window
            rows.append(
                [spec.name, *(_shown(snap.derived[p][spec.name], spec.unit) for p in columns)]
            )
    header = ["", *columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{snap.brand}, last {format_duration(snap.window_seconds)}, by {by}"]
    for row in [header, *rows]:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


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
