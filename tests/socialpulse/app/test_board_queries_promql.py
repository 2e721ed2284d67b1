"""The boards' windows from running totals, evaluated by Prometheus' own engine (`promtool test
rules`) on series that a real deployment makes: a brand moving between workers, a scrape gap,
a series born inside the window, a fresh Prometheus over old totals, totals that fell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from socialpulse.app.boards.from_totals import counted
from socialpulse.app.boards.model import Catalog
from socialpulse.app.boards.preview import substitute
from socialpulse.app.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
# `stack` installs Debian's prometheus package, which ships promtool.
pytestmark = pytest.mark.stack


def series(name: str, values: str, instance: str = "w1:9300", platform: str = "x") -> dict:
    labels = f'brand="acme", platform="{platform}", instance="{instance}", job="w"'
    return {"series": f"{name}{{{labels}}}", "values": values}


def evaluated(
    tmp_path: Path, inputs: list[dict], expr: str, at: str, expected: list[tuple[str, float]]
) -> None:
    """``expr`` at ``at`` over ``inputs`` (a sample a minute) gives exactly ``expected``
    (labels, value) samples, as promtool finds."""
    test: dict[str, Any] = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": at,
                        "exp_samples": [{"labels": k, "value": v} for k, v in expected],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


LIKES = "socialpulse_counted_likes_total"
WINDOW = counted("likes", "5m", 'brand="acme"')  # 10 likes counted a minute below


def test_a_brand_that_moves_to_another_worker_counts_on(stack: Settings, tmp_path: Path) -> None:
    # w1 exports it until minute 10, w2 from minute 10 (a rebalance), the same Redis total.
    moved = [series(LIKES, "0+10x10"), series(LIKES, "_x10 100+10x10", "w2:9300")]
    evaluated(tmp_path, moved, WINDOW, "14m", [('{platform="x"}', 50)])


def test_a_gap_in_the_scrapes_counts_from_the_last_total_before_it(
    stack: Settings, tmp_path: Path
) -> None:
    # Minutes 5 to 7 unscraped: the window counts from minute 4's total (60, not 50: what was
    # counted since that scrape; a gap never makes it the total since the brand began).
    gap = [series(LIKES, "0 10 20 30 40 _ _ _ 80 90 100")]
    evaluated(tmp_path, gap, WINDOW, "10m", [('{platform="x"}', 60)])


def test_without_a_total_before_the_window_the_oldest_in_it_stands_in(
    stack: Settings, tmp_path: Path
) -> None:
    # A fresh Prometheus over a brand that has counted 1,000 likes: 30 in its first 3 minutes,
    # not 1,030; a series born at minute 7: counted from its first scrape.
    fresh = [series(LIKES, "1000+10x10")]
    evaluated(tmp_path, fresh, WINDOW, "3m", [('{platform="x"}', 30)])
    # The same with the platform's mentions (at 0) first scraped with it: still 30.
    with_mentions = [*fresh, series("socialpulse_counted_mentions_total", "0x10")]
    evaluated(tmp_path, with_mentions, WINDOW, "3m", [('{platform="x"}', 30)])
    # A brand's platform new to Prometheus at minute 7: counted from its first scrape.
    born = [series(LIKES, "_x7 30 40 50")]
    evaluated(tmp_path, born, WINDOW, "10m", [('{platform="x"}', 20)])


def test_a_counter_that_began_inside_the_window_counts_from_zero(
    stack: Settings, tmp_path: Path
) -> None:
    # The brand's x platform was known (its mentions at 0 since minute 3, as a worker shows
    # them); its first likes came at minute 7: all 50. Also with the Prometheus younger than
    # the window (nothing before minute 3).
    began = [series("socialpulse_counted_mentions_total", "_x3 0x7"),
             series(LIKES, "_x7 30 40 50")]  # fmt: skip
    evaluated(tmp_path, began, WINDOW, "10m", [('{platform="x"}', 50)])
    evaluated(tmp_path, began, counted("likes", "1h", 'brand="acme"'), "10m",
              [('{platform="x"}', 50)])  # fmt: skip


def test_a_total_that_fell_shows_zero_not_a_negative_count(stack: Settings, tmp_path: Path) -> None:
    fell = [series(LIKES, "0+10x10 20 30")]  # Redis restored from an older backup at minute 11
    evaluated(tmp_path, fell, WINDOW, "12m", [('{platform="x"}', 0)])


def test_a_kpi_formula_per_platform_and_over_all_of_them(stack: Settings, tmp_path: Path) -> None:
    kpi = Catalog(load_settings(ROOT / "config"))
    counts = [
        series("socialpulse_counted_mentions_total", "0+4x10"),
        series("socialpulse_counted_mentions_positive_total", "0+3x10"),
        series("socialpulse_counted_mentions_negative_total", "0+1x10"),
        # tiktok: never a negative mention (no series), so it counts 0 there.
        series("socialpulse_counted_mentions_total", "0+2x10", platform="tiktok"),
        series("socialpulse_counted_mentions_positive_total", "0+2x10", platform="tiktok"),
        # facebook: nothing in the window, a zero denominator: no value.
        series("socialpulse_counted_mentions_total", "5x10", platform="facebook"),
        series("socialpulse_counted_mentions_positive_total", "5x10", platform="facebook"),
    ]
    chosen = {"brand": "acme", "platform": ".*"}
    per_platform = substitute(kpi.by_platform("net_sentiment", "5m"), chosen)
    evaluated(
        tmp_path,
        counts,
        per_platform,
        "10m",
        [('{platform="x"}', (15 - 5) / 20), ('{platform="tiktok"}', 1.0)],
    )
    # Over every platform: (25 - 5) / 30, a ratio of sums.
    overall = substitute(kpi.overall("net_sentiment", "5m"), chosen)
    evaluated(tmp_path, counts, overall, "10m", [("{}", (25 - 5) / 30)])
    # A count over the chosen platforms, and 0 (not "no data") for one never counted.
    evaluated(tmp_path, counts, substitute(kpi.total("mentions", "5m"), chosen), "10m",
              [("{}", 30)])  # fmt: skip
    evaluated(tmp_path, counts, substitute(kpi.total("likes", "5m"), chosen), "10m", [("{}", 0)])
