"""When the evaluation process computes the boards' window gauges (every 10 s, half-way between
its rounds, never right after the last computation), and what it keeps when Redis is away."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from socialpulse.app.board_gauges import GAUGES_PAUSE, BoardGauges, next_start
from socialpulse.app.settings import load_settings
from tests.conftest import free_port, write_config


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


def test_without_redis_the_gauges_are_none_rather_than_the_last_ones(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "gauges", gauges="boards"))
    # Nothing listens on this port: the real client fails as it would with Redis down.
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    asked: list[tuple[str, ...]] = []

    def brands() -> tuple[str, ...]:
        asked.append(("acme", "globex"))
        return asked[-1]

    gauges = BoardGauges(settings, client, brands)
    assert gauges.offset == 2 + 5.0  # settle 2 s, half of the 10 s grid
    with pytest.raises(redis.ConnectionError):
        gauges.refresh()
    assert gauges.latest is not None
    assert gauges.latest.text(False) == ""  # no family: a board shows no data
    assert gauges.seconds > 0
    assert asked == [("acme", "globex")]
