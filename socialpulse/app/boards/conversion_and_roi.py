"""The Conversion and ROI board. Clicks to revenue, cost KPIs and ROI, overall and per campaign."""

from __future__ import annotations

from socialpulse.app.boards.model import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Board,
    Catalog,
    Panel,
    Query,
    _ratio_stat,
)


def conversion_and_roi(kpi: Catalog) -> Board:
    """Clicks to revenue, cost KPIs and ROI, overall and per campaign."""
    m = kpi.metric

    def money(name: str, title: str) -> Panel:
        return Panel(
            title,
            f"Over all platforms, rolling 24h window. {kpi.about(name)} In the currency the "
            "events report.",
            [Query(kpi.overall(name, "1d"), name)],
            unit="none",
            kind="stat",
            width=4,
            height=4,
            steps=[(None, BLUE)],
        )

    def campaign(name: str) -> str:
        metric = m(name).replace("socialpulse_", "socialpulse_campaign_", 1)
        return f'max by (campaign) ({metric}{{brand="$brand", window="1d"}})'

    return Board(
        "socialpulse-conversion",
        "conversion-roi",
        "SocialPulse / Conversion and ROI",
        "From clicks to conversions and revenue against spend: conversion rate, CPC, CPM, CAC "
        "and ROI, over all platforms and per campaign.",
        [
            _ratio_stat(kpi, "roi", "1d", "ROI (24h)", [(None, RED), (0, ORANGE), (0.2, GREEN)]),
            _ratio_stat(
                kpi,
                "conversion_rate",
                "1d",
                "Conversion rate (24h)",
                [(None, RED), (0.01, ORANGE), (0.03, GREEN)],
            ),
            money("cpc", "CPC (24h)"),
            money("cpm", "CPM (24h)"),
            money("cac", "CAC (24h)"),
            money("aov", "Average order value (24h)"),
            Panel(
                "Revenue and spend (1h window)",
                "Money in (orders) and out (ad spend) in the rolling hour, chosen platforms, in "
                "the currency the events report.",
                [
                    Query(kpi.total("revenue", "1h"), "revenue"),
                    Query(kpi.total("spend", "1h"), "spend"),
                ],
                unit="none",
                min=0,
                preview=True,
            ),
            Panel(
                "Funnel (1h window)",
                "Clicks, landing visits, form submits, conversions and orders in the rolling "
                "hour, chosen platforms.",
                [
                    Query(kpi.total(name, "1h"), name)
                    for name in (
                        "clicks",
                        "landing_visits",
                        "form_submits",
                        "conversions",
                        "orders",
                    )
                ],
                min=0,
                preview=True,
            ),
            Panel(
                "ROI and conversion rate (1h window)",
                kpi.about("roi", "conversion_rate"),
                [
                    Query(kpi.overall("roi", "1h"), "ROI"),
                    Query(kpi.overall("conversion_rate", "1h"), "conversion rate"),
                ],
                unit="percentunit",
            ),
            Panel(
                "CPC, CPM and CAC by platform (1h window)",
                kpi.about("cpc", "cpm", "cac"),
                [
                    Query(kpi.by_platform("cpc", "1h"), "CPC {{platform}}"),
                    Query(kpi.by_platform("cpm", "1h"), "CPM {{platform}}"),
                    Query(kpi.by_platform("cac", "1h"), "CAC {{platform}}"),
                ],
                unit="none",
                min=0,
            ),
            Panel(
                "ROI per campaign (24h)",
                "Per campaign over all platforms (brands listed under metrics.campaigns in "
                "socialpulse.yaml; only the busiest max_per_brand campaigns). " + kpi.about("roi"),
                [Query(campaign("roi"), "{{campaign}}")],
                unit="percentunit",
                kind="bargauge",
                steps=[(None, RED), (0, ORANGE), (0.2, GREEN)],
            ),
            Panel(
                "Spend and revenue per campaign (24h)",
                "Per campaign over all platforms, in the currency the events report.",
                [
                    Query(campaign("spend"), "spend {{campaign}}"),
                    Query(campaign("revenue"), "revenue {{campaign}}"),
                ],
                unit="none",
                kind="bargauge",
                steps=[(None, BLUE)],
            ),
            Panel(
                "Campaigns without series",
                "Campaigns with events in the last 24h left out of the per-campaign series by "
                "the cardinality guard (metrics.campaigns.max_per_brand). Raise the cap, or "
                "check the source for a flood of campaign ids.",
                [Query('max(socialpulse_metric_campaigns_over_cap{brand="$brand"})', "over cap")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1, ORANGE)],
            ),
        ],
    )
