"""The Long view board: a brand's counts and money KPIs over 30 and 90 days, and month over
month, from the running totals Prometheus keeps 400 days (the stack's retention).

A long window is the newest total less the last one scraped before the window began (an hour
of look-back, not the five minutes of the short windows); where Prometheus has none (the brand
began counting inside the window) the newest total is all of it, since a total starts at 0.
Two lookups a point, whatever the window: a board over a year stays cheap. These are the
counts ``socialpulse report --from/--to`` gives over the same days, to the scrape interval
(the totals count when an event is counted, the report by its event time: late events at the
window's edges differ).
"""

from __future__ import annotations

from socialpulse.app.boards.from_totals import formula, total_name
from socialpulse.app.boards.model import BLUE, GREEN, ORANGE, RED, Board, Catalog, Panel, Query
from socialpulse.core.config_types import parse_duration

MONEY = ("revenue", "spend", "production_cost")


def over(counter: str, window: str) -> str:
    """What ``counter`` counted in the last ``window`` over all platforms, from its totals."""
    series = f'{total_name(counter)}{{brand="$brand"}}'
    now = f"max by (platform) ({series})"
    before = f"max by (platform) (last_over_time({series}[1h] offset {window}))"
    return f"sum({now} - ({before} or 0 * {now}))"


def long_view(kpi: Catalog) -> Board:
    """Counts, money and ROI over 30 and 90 days, and their course over the months."""

    def value(name: str, window: str) -> str:
        spec = kpi.specs.get(name)
        if spec is None:
            return f"{over(name, window)} or vector(0)"
        return formula(spec.formula, parse_duration(window), lambda c: over(c, window), "vector(0)")

    def stat(
        name: str, window: str, title: str, unit: str, steps: list[tuple[float | None, str]]
    ) -> Panel:
        return Panel(
            title,
            f"Over all platforms, the last {window.replace('d', ' days')}. {kpi.about(name)}",
            [Query(value(name, window), name)],
            unit=unit,
            kind="stat",
            width=4,
            height=4,
            steps=steps,
        )

    roi_steps = [(None, RED), (0, ORANGE), (0.2, GREEN)]
    return Board(
        "socialpulse-long-view",
        "long-view",
        "SocialPulse / Long view",
        "A brand's counts, money and ROI over 30 and 90 days and month over month, from the "
        "running totals (kept 400 days): the numbers socialpulse report gives for the same "
        "days, to the scrape interval.",
        [
            stat("revenue", "30d", "Revenue (30 days)", "none", [(None, BLUE)]),
            stat("spend", "30d", "Ad spend (30 days)", "none", [(None, BLUE)]),
            stat("production_cost", "30d", "Production cost (30 days)", "none", [(None, BLUE)]),
            stat("roi", "30d", "ROI (30 days)", "percentunit", roi_steps),
            stat("content_roi", "30d", "Content ROI (30 days)", "percentunit", roi_steps),
            stat("roi", "90d", "ROI (90 days)", "percentunit", roi_steps),
            Panel(
                "Money, rolling 30 days",
                "Revenue, ad spend and content production cost of the 30 days before each "
                "point: month over month. In the currency the events report.",
                [Query(value(name, "30d"), name) for name in MONEY],
                unit="none",
                min=0,
                preview=True,
            ),
            Panel(
                "ROI and content ROI, rolling 30 days",
                kpi.about("roi", "content_roi"),
                [
                    Query(value("roi", "30d"), "ROI"),
                    Query(value("content_roi", "30d"), "content ROI"),
                ],
                unit="percentunit",
            ),
            Panel(
                "Mentions and engagement by day",
                "Mentions, likes, comments and shares of the day before each point, over all "
                "platforms.",
                [
                    Query(value(name, "1d"), name)
                    for name in ("mentions", "likes", "comments", "shares")
                ],
                min=0,
                width=24,
            ),
        ],
        variables=("brand",),
        time_from="now-90d",
    )
