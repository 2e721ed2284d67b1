"""The Long view board's long windows, evaluated by Prometheus' own engine (`promtool test
rules`): the newest total less the last one before the window (an hour of look-back), all of
it where the total began inside the window, the same whichever worker exported it."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialpulse.app.boards.long_view import over
from socialpulse.app.settings import Settings
from tests.socialpulse.app.test_board_queries_promql import evaluated, series

pytestmark = pytest.mark.stack  # promtool comes with the stack's Prometheus package
LIKES = "socialpulse_counted_likes_total"
WINDOW = over("likes", "30m").replace("$brand", "acme")  # a sample a minute below


def test_a_long_window_is_the_newest_total_less_the_last_before_it(
    stack: Settings, tmp_path: Path
) -> None:
    evaluated(tmp_path, [series(LIKES, "0+10x60")], WINDOW, "60m", [("{}", 300)])
    # Over two platforms, summed; and across a move between workers (max per platform).
    two = [series(LIKES, "0+10x60"), series(LIKES, "0+1x60", platform="instagram")]
    evaluated(tmp_path, two, WINDOW, "60m", [("{}", 330)])
    moved = [series(LIKES, "0+10x40"), series(LIKES, "_x40 400+10x20", "w2:9300")]
    evaluated(tmp_path, moved, WINDOW, "60m", [("{}", 300)])


def test_a_gap_before_the_window_counts_from_the_last_total_within_the_hour(
    stack: Settings, tmp_path: Path
) -> None:
    # Nothing scraped from minute 21 to 40: the window counts from minute 20's total.
    gap = [series(LIKES, "0+10x20 _x20 410+10x20")]
    evaluated(tmp_path, gap, WINDOW, "60m", [("{}", 400)])


def test_a_total_that_began_inside_the_window_counts_whole(stack: Settings, tmp_path: Path) -> None:
    # Counting began at minute 40 (a total starts at 0): all 200 are the window's.
    evaluated(tmp_path, [series(LIKES, "_x40 0+10x20")], WINDOW, "60m", [("{}", 200)])
