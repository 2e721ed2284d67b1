"""The Customer care board. Response time, response rate, backlog, NPS and CSAT."""

from __future__ import annotations

from socialpulse.app.boards.model import (
    GREEN,
    ORANGE,
    RED,
    Board,
    Catalog,
    Panel,
    Query,
    _ratio_stat,
)


def customer_care(kpi: Catalog) -> Board:
    """Response time, response rate, backlog, NPS and CSAT."""
    return Board(
        "socialpulse-care",
        "customer-care",
        "SocialPulse / Customer care",
        "How fast and how often the brand answers people who need a reply, what is still "
        "waiting, and what customers say in surveys.",
        [
            Panel(
                "Response time p90 (1h), slowest platform",
                "90% of the inbound messages answered in the window got their first brand "
                "reply within this time; the slowest of the chosen platforms.",
                [Query(f"max({kpi.gauge('response_time_p90_seconds', '1h')})", "p90")],
                unit="s",
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (3600, ORANGE), (4 * 3600, RED)],
            ),
            _ratio_stat(
                kpi,
                "response_rate",
                "1h",
                "Response rate (1h)",
                [(None, RED), (0.5, ORANGE), (0.9, GREEN)],
            ),
            Panel(
                "Waiting for a reply",
                "Inbound messages needing a reply that have none yet (now, not windowed), "
                "chosen platforms.",
                [Query(kpi.total("unanswered", "1h"), "unanswered")],
                kind="stat",
                width=4,
                height=4,
                steps=[(None, GREEN), (10, ORANGE), (50, RED)],
            ),
            _ratio_stat(kpi, "nps", "1d", "NPS (24h)", [(None, RED), (0, ORANGE), (0.3, GREEN)]),
            _ratio_stat(
                kpi, "csat", "1d", "CSAT (24h)", [(None, RED), (0.7, ORANGE), (0.85, GREEN)]
            ),
            Panel(
                "Response time median and p90 by platform (1h window)",
                "Seconds from an inbound message to the brand's first reply, for the messages "
                "answered in the window.",
                [
                    Query(
                        kpi.by_platform("response_time_median_seconds", "1h"), "median {{platform}}"
                    ),
                    Query(kpi.by_platform("response_time_p90_seconds", "1h"), "p90 {{platform}}"),
                ],
                unit="s",
                min=0,
                steps=[(None, GREEN), (3600, ORANGE), (4 * 3600, RED)],
                preview=True,
            ),
            Panel(
                "Response rate by platform (1h window)",
                f"{kpi.about('response_rate')} Benchmark from alerts.yaml dashed.",
                [
                    Query(kpi.by_platform("response_rate", "1h"), "{{platform}}"),
                    Query('max(socialpulse_kpi_benchmark{kpi="response_rate"})', "benchmark"),
                ],
                unit="percentunit",
                min=0,
                max=1,
                preview=True,
            ),
            Panel(
                "Unanswered backlog and its oldest message",
                "Conversations waiting for the brand's first reply per platform, and how long "
                "the oldest has waited.",
                [
                    Query(kpi.by_platform("unanswered", "1h"), "waiting {{platform}}"),
                    Query(
                        kpi.by_platform("oldest_unanswered_seconds", "1h"),
                        "oldest (s) {{platform}}",
                    ),
                ],
                min=0,
            ),
            Panel(
                "Inbound and replies (1h window)",
                "Messages needing a reply, the brand's replies, and responses (first replies "
                "matched to an inbound conversation), all three by the messages' own time "
                "(responses have no running total), as the response rate reads them.",
                [
                    Query(kpi.total("inbound_needing_reply", "1h", gauge=True), "inbound"),
                    Query(kpi.total("brand_replies", "1h", gauge=True), "replies"),
                    Query(kpi.total("responses", "1h"), "responses"),
                ],
                min=0,
            ),
            Panel(
                "NPS and CSAT (24h window)",
                kpi.about("nps", "csat"),
                [
                    Query(kpi.overall("nps", "1d"), "NPS"),
                    Query(kpi.overall("csat", "1d"), "CSAT"),
                ],
                unit="percentunit",
                min=-1,
                max=1,
            ),
        ],
    )
