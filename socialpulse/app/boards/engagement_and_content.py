"""The Engagement and content board. Engagement, applause, amplification, virality, CTR,
completion."""

from __future__ import annotations

from socialpulse.app.boards.model import (
    BLUE,
    Board,
    Catalog,
    Panel,
    Query,
    _ratio_stat,
)


def engagement_and_content(kpi: Catalog) -> Board:
    """Engagement, applause, amplification, virality, CTR, completion."""
    rate_names = [
        ("engagement_rate", "Engagement rate (reach)"),
        ("engagement_rate_impressions", "Engagement rate (impressions)"),
        ("applause_rate", "Applause rate"),
        ("amplification_rate", "Amplification rate"),
        ("virality_rate", "Virality rate"),
        ("ctr", "CTR"),
        ("completion_rate", "Completion rate"),
    ]
    stats = [
        _ratio_stat(kpi, name, "1h", f"{title} (1h)", [(None, BLUE)], preview=False)
        for name, title in rate_names
    ]
    return Board(
        "socialpulse-engagement",
        "engagement-content",
        "SocialPulse / Engagement and content",
        "How people interact with the brand's content: engagement, applause (likes), "
        "amplification (shares), virality, click-through and video completion.",
        [
            *stats,
            Panel(
                "Interactions (5m window)",
                "Likes, comments, shares, saves and clicks in the rolling 5-minute window, "
                "chosen platforms.",
                [
                    Query(kpi.total(name, "5m"), name)
                    for name in ("likes", "comments", "shares", "saves", "clicks")
                ],
                min=0,
                preview=True,
            ),
            Panel(
                "Engagements by platform (1h window)",
                kpi.about("engagements"),
                [Query(kpi.by_platform("engagements", "1h"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Engagement rate by platform (1h window)",
                f"{kpi.about('engagement_rate')} Benchmark from alerts.yaml dashed.",
                [
                    Query(kpi.by_platform("engagement_rate", "1h"), "{{platform}}"),
                    Query('max(socialpulse_kpi_benchmark{kpi="engagement_rate"})', "benchmark"),
                ],
                unit="percentunit",
                min=0,
                preview=True,
            ),
            Panel(
                "Applause, amplification and comment rates (1h window)",
                kpi.about("applause_rate", "amplification_rate", "comment_rate"),
                [
                    Query(kpi.overall("applause_rate", "1h"), "applause"),
                    Query(kpi.overall("amplification_rate", "1h"), "amplification"),
                    Query(kpi.overall("comment_rate", "1h"), "comment"),
                ],
                unit="percentunit",
                min=0,
            ),
            Panel(
                "Virality and CTR (1h window)",
                kpi.about("virality_rate", "ctr"),
                [
                    Query(kpi.overall("virality_rate", "1h"), "virality"),
                    Query(kpi.overall("ctr", "1h"), "CTR"),
                ],
                unit="percentunit",
                min=0,
            ),
            Panel(
                "Video starts and completions (1h window)",
                f"The counts behind the completion rate. {kpi.about('completion_rate')}",
                [
                    Query(kpi.total("video_starts", "1h"), "starts"),
                    Query(kpi.total("video_completes", "1h"), "completes"),
                ],
                min=0,
            ),
            Panel(
                "Impressions, reach and views (1h window)",
                "impressions: times content was shown; reported reach: unique accounts reached, "
                "as the platforms report it (the growth of each post's reach); video views; "
                "unique reach: distinct user ids of impression events, where events carry them.",
                [
                    Query(kpi.total("impressions", "1h"), "impressions"),
                    Query(kpi.total("reported_reach", "1h"), "reported reach"),
                    Query(kpi.total("video_views", "1h"), "video views"),
                    Query(kpi.total("reach", "1h"), "unique reach"),
                ],
                min=0,
            ),
            Panel(
                "Engagement rate by reach and by impressions (1h window)",
                kpi.about("engagement_rate", "engagement_rate_impressions"),
                [
                    Query(kpi.overall("engagement_rate", "1h"), "by reported reach"),
                    Query(kpi.overall("engagement_rate_impressions", "1h"), "by impressions"),
                ],
                unit="percentunit",
                min=0,
            ),
            Panel(
                "Snapshot corrections (1h window)",
                "Platform totals that went down between two snapshots (unlikes, spam removed, "
                "a platform's correction): counted here, never as negative engagement.",
                [Query(kpi.by_platform("snapshot_corrections", "1h"), "{{platform}}")],
                min=0,
            ),
        ],
    )
