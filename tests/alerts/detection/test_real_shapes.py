"""The shipped rules on the shapes of real mention data, each built from a described situation:
low volume, gaps, level shifts, heavy-tailed bursts, the daily and weekly rhythm (pure)."""

from __future__ import annotations

from alerts.detection.backtest import backtest_series, pair_firings
from alerts.detection.baseline import Baseline, BaselineParams
from alerts.detection.calibration import WEEK
from tests.alerts.detection.shapes import (
    START,
    STEP,
    Rows,
    notifications,
    poisson_series,
    shipped_detector,
)

DAY = 86400


def at(rows: Rows, ts: float) -> int:
    return next(i for i, row in enumerate(rows) if row[0] >= ts)


def test_a_quiet_brand_is_not_paged_for_three_mentions_at_night_but_is_for_a_real_jump() -> None:
    # A few mentions an hour (0.25 per 5 minutes on average), three weeks.
    rows = poisson_series(3, base=0.25, seed=5)
    night = at(rows, START + 16 * DAY + 3 * 3600)  # 03:00, when 0 is usual
    for k in range(3):
        rows[night + k] = (rows[night + k][0], 1.0, None)  # 0 -> 3 in a quarter of an hour
    jump = at(rows, START + 18 * DAY + 15 * 3600)
    for k in range(6):
        rows[jump + k] = (rows[jump + k][0], 12.0, None)  # 72 in half an hour: news
    pages = notifications(shipped_detector(), rows)
    assert [p for p in pages if p > START + 4 * DAY] == [rows[jump + 2][0]]


def test_a_gap_in_the_data_is_not_zero_mentions() -> None:
    # A feed export with six hours missing (no rows) and six hours of empty values: neither is
    # a drop or a silence, and neither teaches the baseline zeros.
    rows = poisson_series(3, base=20.0, seed=6)
    cut = at(rows, START + 15 * DAY + 9 * 3600)
    hole = rows[:cut] + rows[cut + 72 :]
    empty = at(hole, START + 17 * DAY + 9 * 3600)
    for k in range(72):
        hole[empty + k] = (hole[empty + k][0], None, None)
    detector = shipped_detector()
    firings = pair_firings(
        backtest_series(
            type(detector)(
                [r for r in detector.rules if r.kpi == "mentions"],
                detector.settings,
                detector.units,
                detector.budget,
            ),
            "mentions",
            hole,
            STEP,
            progress=False,
        )
    )
    assert [f for f in firings if f.fired_at > START + 4 * DAY] == []


def test_a_level_shift_pages_once_and_becomes_the_new_normal() -> None:
    # Mentions double for good (a campaign that worked, a new market) on day 14, and a news
    # burst comes a week later: two pages, the shift and the burst, not a page a day.
    rows = poisson_series(4, base=20.0, seed=7)
    shift = at(rows, START + 14 * DAY + 10 * 3600)
    rows[shift:] = [(ts, (v or 0) * 2, vol) for ts, v, vol in rows[shift:]]
    burst = at(rows, START + 21 * DAY + 14 * 3600)
    for k in range(12):
        rows[burst + k] = (rows[burst + k][0], (rows[burst + k][1] or 0) * 8, None)
    pages = [p for p in notifications(shipped_detector(), rows) if p > START + 4 * DAY]
    assert len(pages) == 2
    assert rows[shift][0] <= pages[0] <= rows[shift][0] + 3600
    assert rows[burst][0] <= pages[1] <= rows[burst][0] + 1800


def test_heavy_tailed_bursts_do_not_teach_the_baseline() -> None:
    params = BaselineParams(update_every=STEP, warmup=DAY)
    calm, bursty = Baseline(params), Baseline(params)
    quiet = poisson_series(3, base=20.0, seed=8)
    noisy = poisson_series(3, base=20.0, bursts_per_week=10, seed=8)
    for (ts, a, _), (_, b, _) in zip(quiet, noisy, strict=True):
        calm.update(ts, a or 0.0)
        bursty.update(ts, b or 0.0)
    for hour in (4, 10, 16, 22):
        ts = START + 3 * 7 * DAY + hour * 3600
        e_calm, e_bursty = calm.expected(ts), bursty.expected(ts)
        assert e_calm is not None and e_bursty is not None
        # Thirty bursts of up to x50 move what is normal by less than a fifth.
        assert abs(e_bursty.value - e_calm.value) / e_calm.value < 0.2, hour


def test_the_daily_and_weekly_rhythm_alone_never_pages() -> None:
    # Four weeks of a brand's ordinary days: the afternoon peak is eight times the 4 a.m.
    # lull and weekends are 30% quieter.
    for base, seed in ((2.0, 9), (40.0, 10)):
        rows = poisson_series(4, base=base, seed=seed)
        assert notifications(shipped_detector(), rows) == [], base
    assert WEEK == 7 * DAY
