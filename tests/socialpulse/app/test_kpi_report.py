"""`socialpulse kpis` output: the table and JSON show the snapshot's own values."""

from __future__ import annotations

import json

from socialpulse.app.kpi_report import kpi_json, kpi_table
from streams.config import KpiSpec
from streams.counters import ALL_COUNTERS
from streams.formulas import compile_formula
from streams.kpis import WINDOW_NAMES, DerivedKpi, snapshot

NAMES = [*ALL_COUNTERS, *WINDOW_NAMES]
SPEC = KpiSpec(
    name="response_rate", formula="responses / inbound_needing_reply", unit="ratio", help="h"
)
RATE = DerivedKpi("response_rate", compile_formula(SPEC.formula, NAMES), "ratio", "h")
COUNTS = {
    ("inbound_needing_reply", "x"): 4,
    ("responses", "x"): 1,
    ("inbound_needing_reply", "tiktok"): 2,
    ("responses", "tiktok"): 2,
    ("response_time_median_seconds", "x"): 30.0,
    ("response_time_median_seconds", "tiktok"): 90.5,
    ("response_time_median_seconds", "all"): 90.5,  # over all three responses, read as such
    ("oldest_unanswered_seconds", "x"): 600.0,
    ("oldest_unanswered_seconds", "all"): 600.0,
}


def test_table_shows_read_values_for_all_platforms_not_sums() -> None:
    snap = snapshot("acme", 300, COUNTS, ["x", "tiktok"], [RATE])
    lines = {line.split()[0]: line.split()[1:] for line in kpi_table(snap, [SPEC]).splitlines()}
    assert lines["acme,"] == ["last", "5m,", "by", "platform"]
    assert lines["inbound_needing_reply"] == ["4", "2", "6"]
    assert lines["response_time_median_seconds"] == ["30", "90.50", "90.50"]
    assert lines["oldest_unanswered_seconds"] == ["600", "-", "600"]
    assert lines["response_rate"] == ["25.0%", "100.0%", "50.0%"]


def test_json_has_counters_per_platform_and_all() -> None:
    snap = snapshot("acme", 300, COUNTS, ["x", "tiktok"], [RATE])
    report = json.loads(kpi_json(snap))
    assert report["counters"]["all"]["response_time_median_seconds"] == 90.5
    assert report["counters"]["all"]["inbound_needing_reply"] == 6
    assert "oldest_unanswered_seconds" not in report["counters"]["tiktok"]
    assert report["kpis"]["all"]["response_rate"] == 0.5
    assert (report["window"], report["by"]) == ("5m", "platform")


def test_json_output_is_json_even_for_a_number_that_is_not_finite() -> None:
    # A counter read back as infinite (no bound can rule out every reader's input): null,
    # never `Infinity`, which no JSON parser takes.
    snap = snapshot("acme", 300, {**COUNTS, ("revenue", "x"): float("inf")}, ["x"], [RATE])
    text = kpi_json(snap)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the output")

    report = json.loads(text, parse_constant=refuse)
    assert report["counters"]["x"]["revenue"] is None
    assert report["kpis"]["x"]["response_rate"] == 0.25
