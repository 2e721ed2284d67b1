"""Snapshots: counters per platform, derived KPIs per platform and for all platforms."""

from __future__ import annotations

from streams.counters import ALL_COUNTERS
from streams.formulas import compile_formula
from streams.kpis import WINDOW_NAMES, DerivedKpi, brand_snapshots, snapshot

NAMES = [*ALL_COUNTERS, *WINDOW_NAMES]
KPIS = [
    DerivedKpi(
        "negative_share", compile_formula("mentions_negative / mentions", NAMES), "ratio", "h"
    ),
    DerivedKpi(
        "mention_velocity", compile_formula("mentions / window_minutes", NAMES), "per_minute", "h"
    ),
    DerivedKpi("ctr", compile_formula("clicks / impressions", NAMES), "ratio", "h"),
]
COUNTS = {
    ("mentions", "x"): 8,
    ("mentions_negative", "x"): 2,
    ("mentions", "tiktok"): 2,
    ("mentions_negative", "tiktok"): 2,
    ("clicks", "x"): 1,
}


def test_all_platforms_is_a_ratio_of_sums() -> None:
    snap = snapshot("acme", 300, COUNTS, ["x", "instagram"], KPIS)
    assert snap.platforms == ("x", "instagram", "tiktok")
    assert snap.counters["instagram"]["mentions"] == 0
    assert snap.counters["x"]["mentions_negative"] == 2
    assert snap.derived["x"] == {"negative_share": 0.25, "mention_velocity": 1.6, "ctr": None}
    assert snap.derived["tiktok"]["negative_share"] == 1.0
    assert snap.derived["instagram"]["negative_share"] is None  # no mentions: no value
    # (2 + 2) / (8 + 2) = 0.4, not the mean of 0.25 and 1.0
    assert snap.derived["all"] == {"negative_share": 0.4, "mention_velocity": 2.0, "ctr": None}


def test_a_platform_seen_in_any_window_has_a_row_in_all() -> None:
    snaps = brand_snapshots("acme", {60: {}, 300: {("likes", "weibo"): 4}}, ["x"], KPIS)
    assert snaps[60].platforms == snaps[300].platforms == ("x", "weibo")
    assert snaps[60].counters["weibo"]["likes"] == 0
    assert snaps[300].counters["weibo"]["likes"] == 4


def test_distinct_counts_use_the_union_for_all_platforms() -> None:
    counts = {
        ("unique_authors", "x"): 10,
        ("unique_authors", "tiktok"): 4,
        ("unique_authors", "all"): 12,
        ("mentions", "x"): 15,
        ("mentions", "tiktok"): 4,
    }
    snap = snapshot("acme", 300, counts, ["x"], [])
    assert snap.platforms == ("x", "tiktok")  # "all" is not a platform row
    assert snap.counters["x"]["unique_authors"] == 10
    assert snap.derived["all"] == {}
    reach = DerivedKpi(
        "per_author", compile_formula("mentions / unique_authors", NAMES), "count", "h"
    )
    assert snapshot("acme", 300, counts, ["x"], [reach]).derived["all"]["per_author"] == 19 / 12
