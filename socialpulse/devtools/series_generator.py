"""Mention-count series with known anomalies, for detector tests and the detection benchmark.

Counts per minute follow what real brand-mention series show: a daily cycle (a 4 a.m. lull at a
fifth of the mean, an afternoon peak), a weekly one (Monday high, weekend low), a slow trend and
over-dispersed noise (gamma-Poisson, as mention counts are burstier than Poisson). Anomalies
are injected with known start and end: a viral spike that decays, a level shift, a drop, a
silent feed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

AnomalyKind = Literal["spike", "shift", "drop", "silence"]


@dataclass(frozen=True)
class Anomaly:
    """An injected anomaly: ``magnitude`` multiplies the rate (spike: the peak multiplier)."""

    kind: AnomalyKind
    start: float
    duration: int
    magnitude: float = 1.0

    @property
    def end(self) -> float:
        """When the anomaly is over."""
        return self.start + self.duration


def rate(ts: float, base: float, trend_per_week: float = 0.0, start: float = 0.0) -> float:
    """Expected mentions per minute at ``ts`` without anomalies."""
    moment = datetime.fromtimestamp(ts, UTC)
    hour = moment.hour + moment.minute / 60
    daily = 0.2 + 1.6 * (1 - math.cos(2 * math.pi * (hour - 4) / 24)) / 2
    weekly = {0: 1.2, 5: 0.7, 6: 0.7}.get(moment.weekday(), 1.0)
    trend = 1 + trend_per_week * (ts - start) / (7 * 86400)
    return base * daily * weekly * max(trend, 0.1)


def _factor(ts: float, anomalies: list[Anomaly]) -> float:
    factor = 1.0
    for a in anomalies:
        if not a.start <= ts < a.end:
            continue
        if a.kind == "silence":
            return 0.0
        if a.kind == "spike":
            # Viral: up within minutes, then decays over the anomaly's duration.
            age = ts - a.start
            factor *= 1 + (a.magnitude - 1) * min(age / 300, 1) * math.exp(-age / (a.duration / 3))
        else:
            factor *= a.magnitude
    return factor


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (the normal approximation above a mean of 50)."""
    if lam <= 0:
        return 0
    if lam > 50:  # normal approximation; exact sampling is slow for large means
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def minute_counts(
    start: float,
    minutes: int,
    base: float,
    anomalies: list[Anomaly] | None = None,
    seed: int = 1,
    dispersion: float = 20.0,
    trend_per_week: float = 0.0,
) -> list[tuple[float, int]]:
    """(minute start, mentions) for ``minutes`` minutes from ``start`` (a whole minute)."""
    rng = random.Random(seed)
    result = []
    for i in range(minutes):
        ts = start + 60 * i
        lam = rate(ts, base, trend_per_week, start) * _factor(ts, anomalies or [])
        lam *= rng.gammavariate(dispersion, 1 / dispersion)
        result.append((ts, poisson(rng, lam)))
    return result


def rolling_sums(
    counts: list[tuple[float, int]], window: int, every: int
) -> list[tuple[float, int]]:
    """(t, mentions in [t - window, t)) every ``every`` seconds: what a live rule reads."""
    per_minute = [n for _, n in counts]
    width, step = window // 60, every // 60
    start = counts[0][0]
    running = 0
    result = []
    for i, n in enumerate(per_minute):
        running += n
        if i >= width:
            running -= per_minute[i - width]
        end = i + 1
        if end >= width and end % step == 0:
            result.append((start + 60 * end, running))
    return result
