"""The shipped mention-volume rules on a seasonal series with known anomalies (pure, seeded)."""

from __future__ import annotations

from alerts.detection.backtest import Firing, backtest_series, pair_firings
from alerts.detection.baseline import Baseline, BaselineParams
from alerts.detection.configured import detector_for
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home
from socialpulse.devtools.series_generator import Anomaly, minute_counts, rate, rolling_sums

START = 1_767_225_600  # 2026-01-01T00:00Z
DAY = 86400
ANOMALIES = [
    Anomaly("spike", START + 16 * DAY + 14 * 3600, 2 * 3600, 6),
    Anomaly("silence", START + 18 * DAY + 10 * 3600, 3 * 3600),
    Anomaly("drop", START + 19 * DAY + 13 * 3600, 6 * 3600, 0.2),
    Anomaly("shift", START + 20 * DAY + 9 * 3600, 3 * DAY, 2.5),
]


def firings() -> list[Firing]:
    counts = minute_counts(START, 23 * 1440, 10, ANOMALIES, seed=7, trend_per_week=0.05)
    # Counts per 5 minutes, as a mention-volume export gives them; each rule sums its window.
    rows = [(t, float(v), None) for t, v in rolling_sums(counts, 300, 300)]
    shipped = load_settings(project_home() / "config")
    detector = detector_for(shipped.alerts, shipped.kpis.kpis)
    return pair_firings(backtest_series(detector, "mentions", rows, 300, progress=False))


def test_each_anomaly_fires_its_rule_quickly_and_quiet_weeks_stay_quiet() -> None:
    found = []
    for firing in firings():
        [anomaly] = [a for a in ANOMALIES if a.start <= firing.fired_at <= a.end + 900]
        found.append((firing.rule, anomaly.kind, (firing.fired_at - anomaly.start) / 60))
    # 16 days of daily and weekly cycles with a trend before the first anomaly: no firing at
    # all (the [anomaly] unpacking above fails on any firing outside an anomaly).
    # The drop rule reads a whole hour (the count of 12 five-minute rows), so it takes longer
    # than the 15-minute surge rule to be sure.
    assert found == [
        ("mention_volume_surge", "spike", 10.0),
        ("mentions_feed_silent", "silence", 30.0),
        ("mention_volume_drop", "silence", 35.0),
        ("mention_volume_drop", "drop", 70.0),
        ("mention_volume_surge", "shift", 15.0),
    ]


def test_firings_clear_once_the_anomaly_is_over() -> None:
    spike, silence, _, drop, shift = firings()
    assert spike.cleared_at is not None and spike.cleared_at <= ANOMALIES[0].end + 900
    assert silence.cleared_at is not None and silence.cleared_at <= ANOMALIES[1].end + 900
    # The drop rule's hour-long window holds the drop for an hour after it ends.
    assert drop.cleared_at is not None and drop.cleared_at <= ANOMALIES[2].end + 3600 + 900
    assert shift.cleared_at is not None  # the new level is learned, and the alert ends


def test_seasonal_baseline_learns_the_lull_and_the_peak() -> None:
    params = BaselineParams(update_every=300, warmup=DAY)
    baseline = Baseline(params)
    counts = minute_counts(START, 14 * 1440, 10, seed=3)
    for ts, value in rolling_sums(counts, 900, 300):
        if baseline.due(ts):
            baseline.update(ts, value)
    assert baseline.ready
    day = START + 14 * DAY + 2 * DAY  # a Saturday: the weekly low, learned too
    for hour in (4, 16):
        ts = day + hour * 3600
        truth = sum(rate(ts - 60 * m, 10) for m in range(1, 16))
        expected = baseline.expected(ts)
        assert expected is not None
        assert abs(expected.value - truth) / truth < 0.2, (hour, expected.value, truth)


def test_a_burst_moves_a_learned_baseline_only_a_little() -> None:
    params = BaselineParams(update_every=300, warmup=3600, transform="none")
    baseline = Baseline(params)
    for i in range(200):
        baseline.update(START + 300 * i, 100 + (i % 3))
    before = baseline.expected(START + 300 * 200)
    baseline.update(START + 300 * 200, 10_000)
    after = baseline.expected(START + 300 * 201)
    assert before is not None and after is not None
    assert abs(after.centre - before.centre) < 3 * before.spread
    restored = Baseline.from_dict(params, baseline.to_dict())
    assert restored.expected(START) == baseline.expected(START)
