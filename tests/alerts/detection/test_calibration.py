"""Levels calibrated to a notification budget (alerts.detection.calibration; pure, seeded)."""

from __future__ import annotations

import math
import random

import pytest

from alerts.detection.budget import BudgetSettings
from alerts.detection.calibration import (
    WEEK,
    Calibration,
    CalibrationParams,
    fit_tail,
    level_for,
)
from tests.alerts.detection.shapes import START, notifications, poisson_series, shipped_detector


def test_the_tail_fit_recovers_an_exponential_and_a_pareto_tail() -> None:
    rng = random.Random(4)
    xi, sigma = fit_tail([rng.expovariate(1 / 3.0) for _ in range(4000)])
    assert abs(xi) < 0.05 and sigma == pytest.approx(3.0, rel=0.08)
    # Generalised Pareto with xi = 0.3, sigma = 2, by inversion.
    pareto = [2 / 0.3 * ((1 - rng.random()) ** -0.3 - 1) for _ in range(4000)]
    xi, sigma = fit_tail(pareto)
    assert xi == pytest.approx(0.3, abs=0.06) and sigma == pytest.approx(2.0, rel=0.1)


def test_the_level_is_what_surges_reach_budget_times_a_week() -> None:
    # Exponential excesses (mean 1) at 8 surges a week: 1 a week is reached ln(8) above.
    peaks = [2 + -math.log(1 - (i + 0.5) / 400) for i in range(400)]
    level = level_for(peaks, 2.0, 50.0, 1.0)
    assert level == pytest.approx(2 + math.log(8), abs=0.15)
    # Rarer surges than the budget: every surge may page, from the threshold on.
    assert level_for(peaks[:40], 2.0, 50.0, 1.0) == 2.0
    # Too few peaks to fit, and more of them than the budget: no level (the start level).
    assert level_for([3.0, 4.0, 5.0], 2.0, 0.5, 1.0) is None


def test_surges_are_cut_by_gaps_remembered_for_the_horizon_and_gaps_are_not_observed() -> None:
    params = CalibrationParams(threshold=2, gap=3600, horizon=2 * WEEK, min_observed=0)
    c = Calibration()
    t = START
    for _ in range(3):
        for step, score in enumerate([1, 5, 9, 3, 1]):  # one surge peaking at 9 ...
            c.observe(params, t + 300 * step, score)
        t += 300 * 5
        for step in range(13):  # ... ended by an hour below the threshold
            c.observe(params, t + 300 * step, 0.5)
        t += 300 * 13 + 1800
    assert [p for _, p in c.peaks] == [9, 9, 9]
    # A day without scores (a gap) adds one max_step of observed time, not a day.
    observed = c.observed
    c.observe(params, t + 86400, 0.0)
    assert c.observed == observed + params.max_step
    # Three weeks later the old surges are forgotten.
    for day in range(1, 22):
        c.observe(params, t + 86400 + 600 * day, 0.0)
    c.observed += 3 * WEEK
    c.observe(params, t + 86400 * 30, 0.0)
    assert c.peaks == []
    assert Calibration.from_dict(c.to_dict()) == c


def test_an_hourly_series_is_observed_time_not_gaps() -> None:
    params = BudgetSettings().params(step=3600)
    c = Calibration()
    for hour in range(24 * 14):
        c.observe(params, START + 3600 * hour, 0.0)
    assert c.observed == (24 * 14 - 1) * 3600


@pytest.mark.parametrize("budget", [0.5, 2.0])
def test_a_bursty_brand_costs_about_its_budget_a_week(budget: float) -> None:
    # Ten weeks of 5-minute counts with heavy-tailed bursts about six times a week: far more
    # than the budget, so the calibrated level sorts out the biggest.
    rows = poisson_series(10, base=8.0, bursts_per_week=6, seed=11)
    pages = notifications(shipped_detector(budget=budget), rows)
    weeks = (rows[-1][0] - rows[0][0]) / WEEK
    learned = [p for p in pages if p > START + 4 * 86400]  # after the start level
    rate = len(learned) / (weeks - 4 / 7)
    assert budget / 2 <= rate <= budget * 1.5, (budget, rate, len(learned))
