"""Snapshots: counters per platform, derived KPIs per platform and for all platforms."""

from __future__ import annotations

from streams.counters import ALL_COUNTERS
from streams.formulas import compile_formula
from streams.kpis import (
    WINDOW_NAMES,
    DerivedKpi,
    brand_snapshots,
    snapshot,
    with_competitor_mentions,
)

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


def kpi(name: str, formula: str) -> DerivedKpi:
    return DerivedKpi(name, compile_formula(formula, NAMES), "ratio", "h")


def test_share_of_voice_against_competitors_per_platform_and_all() -> None:
    counts = {
        ("acme", 300): {("mentions", "x"): 30, ("mentions", "weibo"): 10},
        ("brewco", 300): {("mentions", "x"): 50, ("likes", "instagram"): 3},
        ("rival2", 300): {("mentions", "x"): 20},
        ("globex", 300): {("mentions", "x"): 7},
    }
    both = with_competitor_mentions(counts, {"acme": ["brewco", "rival2"]})
    assert both[("acme", 300)] == {
        ("mentions", "x"): 30,
        ("mentions", "weibo"): 10,
        ("competitor_mentions", "x"): 70,
        ("competitor_mentions", "weibo"): 0,
        ("competitor_mentions", "instagram"): 0,
    }
    assert both[("globex", 300)] == counts[("globex", 300)]  # no competitors: nothing added
    sov = [kpi("share_of_voice", "mentions / (mentions + competitor_mentions)")]
    acme = snapshot("acme", 300, both[("acme", 300)], ["x", "weibo"], sov)
    assert acme.derived["x"]["share_of_voice"] == 0.3
    assert acme.derived["weibo"]["share_of_voice"] == 1.0  # competitors silent on weibo
    assert acme.derived["instagram"]["share_of_voice"] is None  # nobody: no value
    assert acme.derived["all"]["share_of_voice"] == 40 / 110
    globex = snapshot("globex", 300, both[("globex", 300)], ["x"], sov)
    assert "competitor_mentions" not in globex.counters["x"]
    assert globex.derived["x"]["share_of_voice"] is None  # no competitors: no value, not 100%


def test_follower_rates_need_a_known_follower_count() -> None:
    rates = [
        kpi("applause_rate", "likes / followers"),
        kpi("follower_growth_rate", "(follows - unfollows) / (followers - follows + unfollows)"),
    ]
    counts = {
        ("followers", "x"): 1050,
        ("follows", "x"): 60,
        ("unfollows", "x"): 10,
        ("likes", "x"): 21,
        ("follows", "tiktok"): 5,
        ("likes", "tiktok"): 9,
    }
    snap = snapshot("acme", 3600, counts, ["x", "tiktok"], rates)
    # 1,050 now after +50 in the window: 1,000 at its start, so +5%.
    assert snap.derived["x"] == {"applause_rate": 0.02, "follower_growth_rate": 0.05}
    assert snap.counters["x"]["followers"] == 1050
    assert "followers" not in snap.counters["tiktok"]
    assert snap.derived["tiktok"] == {"applause_rate": None, "follower_growth_rate": None}
    # all: the known counts summed (1,050), over all platforms' likes and growth
    assert snap.derived["all"] == {"applause_rate": 30 / 1050, "follower_growth_rate": 55 / 995}


def test_nps_and_csat_from_survey_bands() -> None:
    survey = [
        kpi("nps", "(nps_promoters - nps_detractors) / nps_responses"),
        kpi("csat", "csat_satisfied / csat_responses"),
    ]
    counts = {
        ("nps_responses", "x"): 20,
        ("nps_promoters", "x"): 10,
        ("nps_detractors", "x"): 4,
        ("csat_responses", "x"): 8,
        ("csat_satisfied", "x"): 6,
    }
    snap = snapshot("acme", 3600, counts, ["x", "tiktok"], survey)
    assert snap.derived["x"] == {"nps": 0.3, "csat": 0.75}
    assert snap.derived["tiktok"] == {"nps": None, "csat": None}


def test_a_kpi_declared_for_some_windows_is_only_computed_for_them() -> None:
    hourly = DerivedKpi(
        "ctr_hourly",
        compile_formula("clicks / impressions", NAMES),
        "ratio",
        "h",
        frozenset([3600]),
    )
    counts = {("clicks", "x"): 1, ("impressions", "x"): 4}
    assert snapshot("acme", 3600, counts, ["x"], [hourly]).derived["x"] == {"ctr_hourly": 0.25}
    assert snapshot("acme", 300, counts, ["x"], [hourly]).derived["x"] == {}


def test_a_snapshot_of_some_counters_has_their_values_and_only_theirs() -> None:
    full = snapshot("acme", 300, COUNTS, ["x", "instagram"], KPIS)
    names = {name for kpi in KPIS for name in kpi.formula.names}
    some = snapshot("acme", 300, COUNTS, ["x", "instagram"], KPIS, only=names)
    assert some.derived == full.derived
    assert some.totals == {c: v for c, v in full.totals.items() if c in names}
    for platform, row in some.counters.items():
        assert row == {c: v for c, v in full.counters[platform].items() if c in names}
    assert set(some.totals) == names & set(full.totals) and some.totals
