"""Board queries from the running totals: which KPIs they serve, and the PromQL of a formula
(its values on the real Prometheus are checked by the board test in test_pipeline_e2e.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from socialpulse.app.boards.from_totals import RUNNING_TOTALS, counted, derivable, formula
from socialpulse.app.boards.model import Catalog
from socialpulse.app.boards.specs import gauges_read
from socialpulse.app.settings import load_settings
from socialpulse.core.config_types import parse_duration
from streams.counters import ALL_COUNTERS

ROOT = Path(__file__).resolve().parents[3]


def test_counters_without_a_total_that_only_grows_are_left_to_the_window_gauges() -> None:
    assert {"mentions", "mentions_negative", "likes", "reported_reach", "spend"} <= RUNNING_TOTALS
    for name in ("reach", "unique_authors", "followers", "competitor_mentions", "responses",
                 "response_time_p90_seconds", "unanswered", "sentiment_score_sum"):  # fmt: skip
        assert name not in RUNNING_TOTALS
    assert derivable({"mentions", "window_minutes"})
    assert not derivable({"mentions", "followers"})


def test_the_shipped_kpis_are_read_from_totals_unless_a_name_has_none() -> None:
    kpi = Catalog(load_settings(ROOT / "config"))
    from_totals = {name for name in kpi.specs if kpi.from_totals(name)}
    assert {"net_sentiment", "engagement_rate", "roi", "cpm", "mention_velocity"} <= from_totals
    # Distinct counts, last known followers, competitors' mentions, sums that can fall, and
    # customer-care responses (matched later, no running total).
    assert {
        "share_of_voice",
        "applause_rate",
        "follower_growth_rate",
        "average_sentiment",
        "response_rate",
    }.isdisjoint(from_totals)
    assert kpi.overall("share_of_voice", "1h") == (
        'max(socialpulse_share_of_voice_ratio{brand="$brand", platform="all", window="1h"})'
    )


def test_a_platform_that_counted_anything_shows_zero_rather_than_no_data() -> None:
    kpi = Catalog(load_settings(ROOT / "config"))
    chosen = 'brand="$brand", platform=~"$platform"'
    zero = f'(0 * group by (platform) ({{__name__=~"socialpulse_counted_.+_total", {chosen}}}))'
    assert kpi.by_platform("snapshot_corrections", "1h") == (
        f"({counted('snapshot_corrections', '1h', chosen)} or {zero})"
    )
    assert kpi.by_platform("engagements", "1h").count(f"or {zero})") == 4  # each counter


def test_a_window_is_the_newest_total_less_the_one_before_it_or_where_it_began() -> None:
    total = 'socialpulse_counted_likes_total{brand="b"}'
    mentions = 'socialpulse_counted_mentions_total{brand="b"}'
    assert counted("likes", "1h", 'brand="b"') == (
        f"clamp_min(max by (platform) ({total}) - "
        f"(max by (platform) (last_over_time({total}[5m] offset 1h)) or "
        f"0 * (sum by (platform) (count_over_time({mentions}[1h])) > "
        f"sum by (platform) (count_over_time({total}[1h]))) or "
        f"min by (platform) (min_over_time({total}[1h]))), 0)"
    )
    assert "[1m] offset 1m" in counted("likes", "1m", 'brand="b"')  # no further back


def test_a_formula_fills_missing_counters_with_zero_and_filters_zero_denominators() -> None:
    query = formula("(likes - refunds) / spend * 1000", 300, lambda c: f"W({c})", "Z")
    assert query == ("((((W(likes) or Z) - (W(refunds) or Z)) / ((W(spend) or Z) != 0)) * 1000.0)")


def test_window_names_are_numbers_and_dividing_by_them_needs_no_filter() -> None:
    assert formula("mentions / window_minutes", 900, lambda c: f"W({c})", "Z") == (
        "((W(mentions) or Z) / 15.0)"
    )
    assert formula("-mentions / window_seconds", 60, lambda c: f"W({c})", "Z") == (
        "(-((W(mentions) or Z)) / 60.0)"
    )


def test_a_name_without_a_running_total_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="followers has no running total; read its window gauge"):
        formula("likes / followers", 3600, lambda c: c, "Z")


def test_every_window_gauge_a_committed_board_reads_is_one_the_boards_mode_exports() -> None:
    settings = load_settings(ROOT / "config")
    names = {Catalog(settings).metric(n): n for n in [*ALL_COUNTERS, *Catalog(settings).specs]}
    read = set()
    for board in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                for metric, labels in re.findall(r"(socialpulse_\w+)\{([^}]*)\}", target["expr"]):
                    window = re.search(r'window="(\w+)"', labels)
                    if window and metric in names:
                        read.add((names[metric], parse_duration(window.group(1))))
    assert read == gauges_read(settings)
    assert ("share_of_voice", 86400) in read and ("likes", 3600) not in read
