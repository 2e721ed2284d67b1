"""``socialpulse backtest``: replay history through the live detector, offline.

Two inputs: a KPI series (CSV ``timestamp,value[,volume]``, any regular interval) or a JSONL file
of raw events, which are decoded and counted as the worker counts them (streams.batch,
streams.store.memory_store) and evaluated on the live tick grid. Both go through
:class:`alerts.detection.engine.Detector`, tick by tick in time order, so no firing uses data from
after its timestamp.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from alerts.detection.config import DetectionConfig
from alerts.detection.engine import SERIES, BrandState, Detector, Values, brand_values, read_time
from alerts.detection.rule_check import AlertEvent
from alerts.detection.rules import Rule, transform_for
from socialpulse.core.config_types import format_duration, parse_instant
from streams.batch import EventType, RawMessage, plan_batch, plan_snapshots
from streams.events import MetricSnapshot
from streams.store.memory_store import MemoryCounts
from streams.windows import WindowPlan, tier_for

# Inputs longer than this show a progress bar (on a terminal).
PROGRESS_FROM = 5_000


class BacktestError(ValueError):
    """The input cannot be backtested; the message names the file, line and fix."""


@dataclass(frozen=True)
class Firing:
    """One alert from firing to clearing (``cleared_at`` None: still firing at the end)."""

    fired_at: float
    cleared_at: float | None
    rule: str
    severity: str
    brand: str
    platform: str
    value: float | None
    baseline: float | None
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601."""
        return {
            "fired_at": iso(self.fired_at),
            "cleared_at": iso(self.cleared_at) if self.cleared_at is not None else None,
            "rule": self.rule,
            "severity": self.severity,
            "brand": self.brand,
            "platform": self.platform,
            "value": self.value,
            "baseline": self.baseline,
            "score": self.score,
        }


def iso(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str, where: str) -> float:
    """Unix seconds from ISO 8601 (``Z`` or offset; naive means UTC) or a number."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_instant(text)
    except ValueError:
        raise BacktestError(
            f"{where}: {text!r} is not a time (use ISO 8601 such as 2026-11-02T09:00:00Z, or "
            "unix seconds)"
        ) from None


def pair_firings(events: Iterable[AlertEvent]) -> list[Firing]:
    """Match each firing with its clearing, in firing order."""
    open_: dict[tuple[str, str, str], AlertEvent] = {}
    done: list[tuple[AlertEvent, AlertEvent | None]] = []
    for event in events:
        key = (event.rule, event.brand, event.platform)
        if event.event == "fired":
            open_[key] = event
        elif key in open_:
            done.append((open_.pop(key), event))
    done.extend((fired, None) for fired in open_.values())
    done.sort(key=lambda pair: (pair[0].at, pair[0].rule, pair[0].brand, pair[0].platform))
    return [
        Firing(
            f.at,
            c.at if c else None,
            f.rule,
            f.severity,
            f.brand,
            f.platform,
            f.value,
            f.baseline,
            f.score,
        )
        for f, c in done
    ]


# ---- series -------------------------------------------------------------------------------


def read_series(path: Path, handle: TextIO) -> list[tuple[float, float | None, float | None]]:
    """(ts, value, volume) rows of a ``timestamp,value[,volume]`` CSV, in time order; an empty
    value is a gap (no data, which is not zero)."""
    reader = csv.DictReader(handle)
    columns = [c.strip() for c in reader.fieldnames or []]
    if "timestamp" not in columns or "value" not in columns:
        raise BacktestError(
            f"{path}: line 1: the header must name the columns timestamp,value (optionally "
            f"volume); found {','.join(columns) or 'nothing'}"
        )
    rows: list[tuple[float, float | None, float | None]] = []
    for line, record in enumerate(reader, start=2):
        record = {(k or "").strip(): v for k, v in record.items()}
        where = f"{path}: line {line}"
        ts = parse_time(record.get("timestamp") or "", where)
        text = (record.get("value") or "").strip()
        try:
            value = float(text) if text else None
            volume = float(record["volume"]) if record.get("volume") not in (None, "") else None
        except (TypeError, ValueError):
            raise BacktestError(f"{where}: value {record.get('value')!r} is not a number") from None
        if value is not None and not math.isfinite(value):
            raise BacktestError(f"{where}: value {record['value']!r} is not a finite number")
        rows.append((ts, value, volume))
    if sum(1 for row in rows if row[1] is not None) < 2:
        raise BacktestError(f"{path}: needs at least two rows of timestamp,value")
    rows.sort(key=lambda row: row[0])
    return rows


def infer_interval(path: Path, times: Sequence[float]) -> int:
    """The series' regular interval: the median gap, which most gaps must equal."""
    gaps = [b - a for a, b in itertools.pairwise(times)]
    interval = statistics.median(gaps)
    if interval <= 0:
        raise BacktestError(f"{path}: timestamps repeat; one row per interval is expected")
    regular = sum(1 for g in gaps if abs(g - interval) < 1e-6) / len(gaps)
    if regular < 0.8:
        raise BacktestError(
            f"{path}: the interval is not regular (only {regular:.0%} of gaps are "
            f"{format_duration(int(interval))}); pass --interval to say what it is"
        )
    return int(interval)


def window_values(
    rows: Sequence[tuple[float, float | None, float | None]], interval: int, window: int
) -> list[float | None]:
    """Each row's value over a rule's window: for a window of several intervals, the sum of the
    rows in it (a count per interval adds up), or None when a row in it is missing or empty: a
    gap is no data, not zero."""
    steps = window // interval if window >= interval and window % interval == 0 else 1
    if steps == 1:
        return [value for _, value, _ in rows]
    by_time = {round(ts): value for ts, value, _ in rows}
    result: list[float | None] = []
    for ts, _, _ in rows:
        parts = [by_time.get(round(ts) - k * interval) for k in range(steps)]
        result.append(None if any(p is None for p in parts) else sum(p or 0.0 for p in parts))
    return result


def backtest_series(
    detector: Detector,
    kpi: str,
    rows: Sequence[tuple[float, float | None, float | None]],
    interval: int,
    progress: bool = True,
) -> list[AlertEvent]:
    """Run the rules watching ``kpi`` over a series with one row per ``interval`` seconds; return
    their firings and clearings. A count KPI is summed over each rule's window; other KPIs are
    taken as the series gives them."""
    rules = [r for r in detector.rules if r.kpi == kpi and r.kind != "negative_spike"]
    if not rules:
        watched = sorted({r.kpi for r in detector.rules if r.kind != "negative_spike"})
        raise BacktestError(
            f"no rule watches {kpi!r} on a single series; rules here watch: "
            f"{', '.join(watched) or 'nothing'} (give --rules with a rule for {kpi})"
        )
    series = Detector(
        rules, detector.settings, detector.units, detector.budget, detector.shared_with
    )
    counted = transform_for(kpi, detector.units.get(kpi)) == "sqrt"
    windows = sorted({r.window for r in rules})
    values = {
        w: window_values(rows, interval, w) if counted else [v for _, v, _ in rows] for w in windows
    }
    # A volume column is a count per row too: summed over each window like the value.
    volume_rows = [(ts, volume, None) for ts, _, volume in rows]
    volumes = {w: window_values(volume_rows, interval, w) for w in windows}
    state = BrandState()
    events: list[AlertEvent] = []
    for i, (ts, _, volume) in enumerate(_progress(rows, progress, "samples")):
        by_window: dict[int, Values] = {}
        for w in windows:
            row: dict[str, float | None] = {kpi: values[w][i]}
            for rule in rules:
                if rule.window == w and rule.volume_kpi != kpi:
                    row[rule.volume_kpi] = volumes[w][i] if volume is not None else values[w][i]
            by_window[w] = {SERIES: row}
        events.extend(series.tick(SERIES, ts, [SERIES], by_window, state))
    return events


# ---- raw events ---------------------------------------------------------------------------


def read_events(
    settings: DetectionConfig, path: Path, handle: TextIO, counts: MemoryCounts
) -> tuple[float, float, int]:
    """Count a JSONL file's events into ``counts``; return (first ts, last ts, rejected)."""
    pipeline = settings.pipeline
    # Lateness does not apply offline: every event counts at its own time.
    plan_all = WindowPlan.of(pipeline.windows.rolling, 10**12, 10**12)
    bot_authors = frozenset(pipeline.cleaning.bot_authors)
    first, last, rejected = math.inf, -math.inf, 0
    counted = []
    snapshots: list[MetricSnapshot] = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            kind: EventType = "interaction" if "kind" in item else "mention"
            if "metrics" in item and "object_id" in item:
                kind = "snapshot"
        except (json.JSONDecodeError, TypeError):
            kind = "mention"  # decoding below reports it
        message = RawMessage(str(path), 0, number, None, line.encode())
        if kind == "snapshot":
            taken = plan_snapshots([message], plan_all, 0.0)
            rejected += len(taken.rejected)
            snapshots.extend(taken.snapshots)
            continue
        plan = plan_batch(
            [message],
            kind,
            plan_all,
            0.0,
            bot_authors=bot_authors,
            limit_author_rate=pipeline.cleaning.max_mentions_per_author_per_minute > 0,
        )
        rejected += len(plan.rejected)
        counted.extend(plan.counted)
    counted.sort(key=lambda e: e.ts)
    for event in counted:
        counts.count(event)
        first, last = min(first, event.ts), max(last, event.ts)
    # Each snapshot as the worker would have taken it when it was read (its growth spread
    # back to the one before), in the order they were read.
    track_for = int(pipeline.snapshots.track_for)
    for snapshot in sorted(snapshots, key=lambda s: s.ts):
        ts = snapshot.ts.timestamp()
        if counts.count_snapshot(snapshot, plan_all, track_for, ts).pieces:
            first, last = min(first, ts), max(last, ts)
    if not counted and not snapshots:
        raise BacktestError(f"{path}: no valid event (rejected: {rejected})")
    return first, last, rejected


def count_event_file(
    settings: DetectionConfig, path: Path
) -> tuple[MemoryCounts, float, float, int]:
    """A JSONL file of events counted as the worker counts them (:func:`read_events`): the
    counts, the first and last event's time, and how many events were rejected."""
    counts = MemoryCounts(
        settings.window_plan.tiers,
        settings.pipeline.cleaning.max_mentions_per_author_per_minute,
    )
    with path.open(encoding="utf-8") as source:
        first, last, rejected = read_events(settings, path, source, counts)
    return counts, first, last, rejected


def event_span(
    detector: Detector,
    first: float,
    last: float,
    start: float | None = None,
    end: float | None = None,
) -> tuple[float, float]:
    """The ticks a backtest of events covers: from ``start`` (default: the first event) to
    ``end`` (default: the last event and the longest window, so the last firings can clear)."""
    longest = max(detector.windows(), default=0)
    return (first if start is None else start), (last + longest if end is None else end)


def backtest_events(
    settings: DetectionConfig,
    detector: Detector,
    counts: MemoryCounts,
    start: float,
    end: float,
    progress: bool = True,
) -> list[AlertEvent]:
    """Evaluate every brand's rules on the live tick grid from ``start`` to ``end``."""
    events, _ = replay_events(settings, detector, counts, start, end, progress=progress)
    return events


def replay_events(
    settings: DetectionConfig,
    detector: Detector,
    counts: MemoryCounts,
    start: float,
    end: float,
    every: int | None = None,
    progress: bool = True,
) -> tuple[list[AlertEvent], dict[str, BrandState]]:
    """Evaluate every brand's rules on a tick grid (default: the live one) from ``start`` to
    ``end``; the firings and clearings, and each brand's detection state at the end (its learned
    baselines and calibrations)."""
    every = every or settings.alerts.evaluation.every
    first = math.ceil(start / every) * every
    ticks = [float(t) for t in range(int(first), int(end) + 1, every)]
    brands = [(b.id, b.platforms) for b in settings.brands.brands]
    states = {b: BrandState() for b, _ in brands}
    events: list[AlertEvent] = []
    for tick in _progress(ticks, progress, "ticks"):
        window_counts = {
            (brand, window): counts.window(
                brand, window, tier_for(window) or 10, read_time(tick, window)
            )
            for brand, _ in brands
            for window in detector.windows()
        }
        values = brand_values(brands, settings.competitors, settings.derived_kpis, window_counts)
        for brand, _ in brands:
            platforms, by_window = values[brand]
            events.extend(detector.tick(brand, tick, platforms, by_window, states[brand]))
    return events, states


def _progress(items: Sequence[Any], enabled: bool, unit: str) -> Iterator[Any]:
    # disable=None: tqdm shows the bar only on a terminal, so piped output stays clean.
    disable = None if enabled and len(items) >= PROGRESS_FROM else True
    yield from tqdm(items, unit=unit, disable=disable, leave=False)


def summary(firings: Sequence[Firing], end: float) -> str:
    """Firings per rule and time in alert (open firings counted to ``end``)."""
    lines = [f"{len(firings)} firings"]
    total = 0.0
    for rule in sorted({f.rule for f in firings}):
        mine = [f for f in firings if f.rule == rule]
        seconds = sum((f.cleared_at or end) - f.fired_at for f in mine)
        total += seconds
        lines.append(
            f"  {rule}: {len(mine)} firings, {format_duration(int(seconds) or 1)} in alert"
        )
    lines[0] += f", {format_duration(int(total) or 1)} in alert" if firings else ""
    return "\n".join(lines)


def table(firings: Sequence[Firing]) -> str:
    """The firings as an aligned text table."""
    header = (
        "fired_at",
        "cleared_at",
        "rule",
        "severity",
        "brand",
        "platform",
        "value",
        "baseline",
    )
    rows = [
        (
            iso(f.fired_at),
            iso(f.cleared_at) if f.cleared_at is not None else "-",
            f.rule,
            f.severity,
            f.brand,
            f.platform,
            _num(f.value),
            _num(f.baseline),
        )
        for f in firings
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"


def select_rules(rules: Sequence[Rule], kpi: str | None) -> list[Rule]:
    """The rules for one KPI, or all."""
    return [r for r in rules if kpi is None or r.kpi == kpi]
