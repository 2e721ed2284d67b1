"""Described situations as 5-minute mention series, and the shipped rules' pages on them."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from alerts.detection.backtest import backtest_series
from alerts.detection.configured import detector_for
from alerts.detection.engine import Detector
from alerts.incidents.replay import replay
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.paths import project_home
from socialpulse.devtools.series_generator import poisson

START = 1_767_225_600  # 2026-01-01T00:00Z, a Thursday
STEP = 300
Rows = list[tuple[float, float | None, float | None]]


def shipped() -> Settings:
    """The shipped configuration."""
    return load_settings(project_home() / "config")


def shipped_detector(budget: float | None = None) -> Detector:
    """The shipped rules, with another warning budget when given."""
    settings = shipped()
    detection = settings.alerts
    if budget is not None:
        per_week = {**detection.budget.per_week, "warning": budget}
        detection = detection.model_copy(
            update={"budget": detection.budget.model_copy(update={"per_week": per_week})}
        )
    return detector_for(detection, settings.kpis.kpis)


def rhythm(ts: float) -> float:
    """Daily (a 4 a.m. lull at a fifth of the mean) and weekly (weekends lower) shape."""
    moment = datetime.fromtimestamp(ts, UTC)
    hour = moment.hour + moment.minute / 60
    daily = 0.2 + 1.6 * (1 - math.cos(2 * math.pi * (hour - 4) / 24)) / 2
    return daily * (0.7 if moment.weekday() >= 5 else 1.0)


def poisson_series(weeks: float, base: float, bursts_per_week: float = 0.0, seed: int = 1) -> Rows:
    """Mentions per 5 minutes with the rhythm around ``base``, over-dispersed, and bursts of
    Pareto-distributed size (x2 to x50 and more) lasting an hour, at random times."""
    rng = random.Random(seed)
    n = int(weeks * 7 * 86400 / STEP)
    boost = [1.0] * n
    i = 0
    while bursts_per_week and i < n:
        i += int(rng.expovariate(bursts_per_week / (7 * 86400 / STEP)))
        size = 1 + rng.paretovariate(1.2)
        for k in range(12):
            if i + k < n:
                boost[i + k] *= 1 + size * math.exp(-k / 4)
    rows: Rows = []
    for j in range(n):
        ts = START + STEP * j
        lam = base * rhythm(ts) * rng.gammavariate(20, 1 / 20) * boost[j]
        rows.append((float(ts), float(poisson(rng, lam)), None))
    return rows


def notifications(detector: Detector, rows: Rows) -> list[float]:
    """When the shipped rules watching mentions page (incidents opened) on the series."""
    settings = shipped()
    mentions = Detector(
        [r for r in detector.rules if r.kpi == "mentions"],
        detector.settings,
        detector.units,
        detector.budget,
        shared_with=detector.rules,
    )
    events = backtest_series(mentions, "mentions", rows, STEP, progress=False)
    incidents = replay(events, settings.alerts.incidents, settings.alerts.slack.channel)
    return [i.opened_at for i in incidents]
