"""The long view's pure parts: spans and the span before, exact sums over days, KPIs as ratios
of sums, and the report's table, JSON and CSV."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from socialpulse.app import period_report as pr
from socialpulse.app.settings import load_settings
from tests.conftest import ROOT

D = 1_793_491_200  # 2026-11-01T00:00:00Z


def test_months_quarters_and_days_and_the_spans_before_them() -> None:
    november = pr.month("2026-11")
    assert (november.first, november.last, len(november.days)) == (
        date(2026, 11, 1),
        date(2026, 11, 30),
        30,
    )
    assert november.days[0] == D
    assert pr.month("2026-01").before().label == "2025-12"
    assert pr.quarter("2026-Q1").before() == pr.quarter("2025-Q4")
    assert (pr.quarter("2026q4").first, pr.quarter("2026-Q4").last) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    fortnight = pr.days_between("2026-11-03", "2026-11-16")
    assert fortnight.before() == pr.Span(
        date(2026, 10, 20), date(2026, 11, 2), "2026-10-20..2026-11-02"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: pr.month("2026-13"), "--period '2026-13' is not a month: give it as 2026-11"),
        (lambda: pr.month("November"), "--period 'November' is not a month: give it as 2026-11"),
        (lambda: pr.quarter("2026-Q5"), "--quarter '2026-Q5' is not a quarter: give it as 2026-Q4"),
        (
            lambda: pr.days_between("2026-11-16", "2026-11-03"),
            "--to 2026-11-03 is before --from 2026-11-16",
        ),
        (lambda: pr.days_between("yesterday", "2026-11-03"), "give days as 2026-11-03"),
    ],
)
def test_a_span_that_is_not_one_is_refused_with_its_form(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()  # type: ignore[operator]


def test_sums_are_exact_and_kpis_are_ratios_of_sums_with_the_change() -> None:
    settings = load_settings(ROOT / "config")
    days = {
        D: {"orders|x": 1, "revenue|x": 0.1, "spend|x": 0.3, "mentions|x": 2, "_rolled:1": 1},
        D + 86400: {"orders|instagram": 2, "revenue|instagram": 0.2, "mentions|x": 1},
        D - 86400: {"orders|x": 1, "revenue|x": 0.15, "spend|x": 0.1},
    }
    now = pr.summed(days, [D, D + 86400])
    assert now == {
        "orders": Decimal(3),
        "revenue": Decimal("0.3"),
        "spend": Decimal("0.3"),
        "mentions": Decimal(3),
    }
    before = pr.summed(days, [D - 86400])
    rows = {r.name: r for r in pr.rows(now, before, settings.derived_kpis, (2 * 86400, 86400))}
    assert (rows["revenue"].current, rows["revenue"].previous) == (0.3, 0.15)
    assert rows["revenue"].change == pytest.approx(1.0)
    assert rows["roi"].current == 0.0  # (0.3 - 0.3) / 0.3, over the sums
    assert rows["roi"].previous == pytest.approx(0.5)
    assert rows["aov"].current == pytest.approx(0.1)
    assert "unique_authors" not in rows and "reach_rate" not in rows  # not kept by day
    assert rows["mentions"].change is None  # nothing before
    assert set(
        pr.members({D: {"revenue|content:a": 1, "revenue|campaign:s": 2}}, [D], "content")
    ) == {"content:a"}


def test_the_report_as_table_json_and_csv() -> None:
    span = pr.days_between("2026-11-01", "2026-11-02")
    lines = [pr.Row("orders", "count", 3.0, 2.0), pr.Row("roi", "ratio", 0.25, None)]
    assert pr.table("acme, all platforms", (span, span.before()), lines).splitlines() == [
        "acme, all platforms",
        "        2026-11-01..2026-11-02  2026-10-30..2026-10-31  change",
        "orders                       3                       2  +50.0%",
        "roi                      25.0%                       -       -",
    ]
    data = json.loads(pr.as_json("acme", "all platforms", (span, span.before()), lines))
    assert data["rows"]["roi"] == {
        "unit": "ratio",
        "current": 0.25,
        "previous": None,
        "change": None,
    }
    assert data["previous"] == {
        "label": "2026-10-30..2026-10-31",
        "from": "2026-10-30",
        "to": "2026-10-31",
    }
    assert pr.as_csv(lines) == (
        "name,unit,current,previous,change\norders,count,3.0,2.0,0.5\nroi,ratio,0.25,,\n"
    )
    assert pr.campaign_span(
        {D: {"revenue|campaign:spring": 1}, D + 3 * 86400: {"clicks|campaign:spring": 4}}, "spring"
    ) == pr.Span(date(2026, 11, 1), date(2026, 11, 4), "campaign spring, 2026-11-01..2026-11-04")
    assert pr.campaign_span({D: {"revenue|campaign:other": 1}}, "spring") is None
