"""The soak report's maths: quantiles from histogram buckets, scrape parsing, the verdict."""

from __future__ import annotations

import math

import pytest

from socialpulse.devtools.soak import Sample, delta, histogram_quantile, parse_scrape, verdict

SCRAPE = """# HELP socialpulse_events_counted_total x
socialpulse_events_counted_total{topic="a"} 100.0
socialpulse_events_counted_total{topic="b"} 50.0
socialpulse_consumer_lag_messages{partition="0",topic="a"} 3.0
socialpulse_consumer_lag_messages{partition="1",topic="a"} 4.0
process_resident_memory_bytes 1.048576e+08
socialpulse_arrival_to_visible_seconds_bucket{le="0.1",topic="a"} 90.0
socialpulse_arrival_to_visible_seconds_bucket{le="0.25",topic="a"} 100.0
socialpulse_arrival_to_visible_seconds_bucket{le="+Inf",topic="a"} 100.0
socialpulse_arrival_to_visible_seconds_bucket{le="0.1",topic="b"} 90.0
socialpulse_arrival_to_visible_seconds_bucket{le="0.25",topic="b"} 100.0
socialpulse_arrival_to_visible_seconds_bucket{le="+Inf",topic="b"} 100.0
"""


def test_a_scrape_is_summed_over_topics_and_partitions() -> None:
    sample = parse_scrape(SCRAPE, 30.0)
    assert (sample.counted, sample.lag, sample.rss) == (150, 7, 100 * 2**20)
    assert sample.buckets == [(0.1, 180), (0.25, 200), (math.inf, 200)]


def test_quantiles_interpolate_like_prometheus() -> None:
    buckets = [(0.1, 180.0), (0.25, 200.0), (math.inf, 200.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 * 100 / 180)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.1 + 0.15 * 18 / 20)
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 10.0)]) == 0.1  # in +Inf
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert delta([(0.1, 5.0), (math.inf, 9.0)], [(0.1, 2.0), (math.inf, 3.0)]) == [
        (0.1, 3.0),
        (math.inf, 6.0),
    ]


def test_verdict_flags_growing_memory_and_runaway_lag() -> None:
    flat = [Sample(30, 0, 10, 100e6, []), Sample(630, 300_000, 20, 108e6, [])]
    figures = verdict(flat, rate=500)
    assert figures["throughput_events_per_s"] == 500.0
    assert (figures["rss_change"], figures["rss_flat"], figures["lag_bounded"]) == (
        0.08,
        True,
        True,
    )
    growing = [Sample(30, 0, 10, 100e6, []), Sample(630, 300_000, 20_000, 115e6, [])]
    figures = verdict(growing, rate=500)
    assert (figures["rss_flat"], figures["lag_bounded"]) == (False, False)
