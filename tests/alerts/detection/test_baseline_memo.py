"""A baseline's expected value, computed once per learned sample and hour rather than at every
tick, is the same as computed afresh from its stored state, and its UTC slots are the calendar's."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detection.baseline import Baseline, BaselineParams, _slots

START = 1_796_160_000.0  # 2026-12-01 00:00 UTC


# Whole microseconds: datetime rounds to them, the slots take the second a time falls in.
@given(st.integers(-2 * 10**9, 5 * 10**9), st.integers(0, 999_999))
def test_slots_are_the_utc_hour_and_weekday(seconds: int, microseconds: int) -> None:
    ts = seconds + microseconds / 1e6
    moment = datetime.fromtimestamp(ts, UTC)
    assert _slots(ts) == (moment.hour, moment.weekday())


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["seasonal", "rolling"]), st.sampled_from(["sqrt", "none"]), st.integers(0, 9)
)
def test_the_remembered_expectation_is_what_a_fresh_baseline_computes(
    method: str, transform: str, seed: int
) -> None:
    rng = random.Random(seed)
    params = BaselineParams(method=method, transform=transform, warmup=3600)  # type: ignore[arg-type]
    baseline = Baseline(params)
    for step in range(2 * 288):  # two days of 5-minute samples, read at every 10 s tick between
        ts = START + step * 300
        for tick in (ts, ts + 10, ts + 150, ts + 290):
            fresh = Baseline.from_dict(params, baseline.to_dict()).expected(tick)
            assert baseline.expected(tick) == fresh
        if rng.random() < 0.9:  # some samples are missing (a gap)
            baseline.update(ts, rng.choice([0.0, 1.0, 3.0, 40.0, rng.uniform(0, 100)]))
    assert baseline.expected(START + 2 * 86400) is not None


def test_a_value_that_is_not_a_number_teaches_a_baseline_nothing() -> None:
    baseline = Baseline(BaselineParams(warmup=600))
    for step in range(4):
        baseline.update(START + step * 300, 9.0)
    learned = baseline.to_dict()
    for bad in (float("nan"), float("inf"), float("-inf")):
        baseline.update(START + 1500, bad)
    assert baseline.to_dict() == learned
    expected = baseline.expected(START + 1500)
    assert expected is not None and round(expected.value, 9) == 9.0 and expected.spread == 0.5
