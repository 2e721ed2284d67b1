"""When the evaluation process computes the boards' window gauges: once per evaluation grid,
half-way between its rounds, never right after the last computation."""

from __future__ import annotations

import pytest

from socialpulse.app.board_gauges import GAUGES_PAUSE, next_start


@pytest.mark.parametrize(
    ("now", "wait"),
    [
        (100.0, 7.0),  # rounds start at 102, 112, ...: the gauges at 107, 117, ...
        (103.25, 3.75),
        (106.5, 10.5),  # 0.5 s to the next start is less than the pause: the one after
        (107.0, 10.0),  # just started (a computation that took no time): the next grid's
        (115.0, 2.0),
    ],
)
def test_the_next_computation_is_half_way_between_evaluation_rounds(
    now: float, wait: float
) -> None:
    assert next_start(now, every=10.0, offset=7.0) == pytest.approx(wait)
    assert next_start(now, every=10.0, offset=7.0) >= GAUGES_PAUSE
