"""An imported history's running totals: sampled on the minute grid from its first hour to the
hour after its last, the worker's names and labels, as OpenMetrics text promtool reads."""

from __future__ import annotations

import pytest

from socialpulse.app.totals_backfill import history_totals, openmetrics
from streams.counted import CountedEvent
from streams.store.memory_store import MemoryCounts

H = 1_796_000_400  # an hour's start (unix seconds)


def counted(*events: tuple[float, str, list[tuple[str, float | None]]]) -> MemoryCounts:
    counts = MemoryCounts((10, 60, 300, 3600))
    for n, (ts, brand, fields) in enumerate(events):
        counts.count(CountedEvent(brand, f"e{n}", ts, fields))
    return counts


def test_totals_are_what_was_counted_before_each_grid_point_from_hour_to_hour() -> None:
    counts = counted(
        (H + 30, "acme", [("mentions|x", None), ("revenue|x", 19.99)]),
        (H + 61, "acme", [("mentions|x", None), ("revenue|x", 0.01)]),
        (H + 3599, "acme", [("mentions|x", None)]),
        (H + 100, "other", [("mentions|x", None)]),  # not a configured brand: left out
    )
    totals = history_totals(counts, {"acme": ["x", "instagram"]}, step=600)
    assert totals is not None
    grid = list(range(H, H + 3600 + 1, 600))  # the hour after the last: its events in
    expected = list(zip(grid, [0, 2, 2, 2, 2, 2, 3], strict=True))
    assert list(totals.samples(("mentions", "acme", "x"))) == expected
    assert totals.final(("mentions", "acme", "x")) == 3
    revenue = dict(totals.samples(("revenue", "acme", "x")))
    assert (revenue[H], revenue[H + 600], revenue[H + 3600]) == (
        0,
        pytest.approx(20.0),
        pytest.approx(20.0),
    )
    # Mentions on every configured platform from 0, as a worker exports them.
    assert {v for _, v in totals.samples(("mentions", "acme", "instagram"))} == {0.0}
    assert set(totals.minutes) == {
        ("mentions", "acme", "x"),
        ("revenue", "acme", "x"),
        ("mentions", "acme", "instagram"),
    }
    with pytest.raises(ValueError, match="divide an hour"):
        history_totals(counts, {"acme": ["x"]}, step=420)
    # Cut at an hour (Prometheus' head): what came after is not in the samples or the final.
    early = history_totals(counts, {"acme": ["x"]}, step=600, until=H + 1800)
    assert early is None  # not one whole hour before the cut
    late = counted(
        (H + 30, "acme", [("mentions|x", None)]), (H + 3700, "acme", [("mentions|x", None)])
    )
    cut = history_totals(late, {"acme": ["x"]}, until=H + 3600 + 1800)
    assert cut is not None and (cut.end, cut.final(("mentions", "acme", "x"))) == (H + 3600, 1)


def test_openmetrics_text_has_the_worker_s_names_and_labels_a_family_at_a_time() -> None:
    counts = counted(
        (H + 30, "acme", [("mentions|x", None), ("sentiment_score_sum|x", -0.5)]),
    )
    text = "".join(openmetrics(history_totals(counts, {"acme": ["x"]}, step=1800)))
    labels = 'brand="acme",instance="history",job="socialpulse-worker",platform="x"'
    assert text == (
        "# HELP socialpulse_counted_mentions Running total of mentions (imported history).\n"
        "# TYPE socialpulse_counted_mentions counter\n"
        f"socialpulse_counted_mentions_total{{{labels}}} 0 {H}\n"
        f"socialpulse_counted_mentions_total{{{labels}}} 1 {H + 1800}\n"
        f"socialpulse_counted_mentions_total{{{labels}}} 1 {H + 3600}\n"
        "# HELP socialpulse_counted_sentiment_score_sum Running total of sentiment_score_sum "
        "(imported history).\n"
        "# TYPE socialpulse_counted_sentiment_score_sum gauge\n"
        f"socialpulse_counted_sentiment_score_sum{{{labels}}} 0 {H}\n"
        f"socialpulse_counted_sentiment_score_sum{{{labels}}} -0.5 {H + 1800}\n"
        f"socialpulse_counted_sentiment_score_sum{{{labels}}} -0.5 {H + 3600}\n"
        "# EOF\n"
    )
    assert list(openmetrics(None)) == ["# EOF\n"]
