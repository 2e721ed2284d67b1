"""The Brand overview board. Volume, velocity, sentiment, share of voice, engagement, reach,
followers, incidents."""

from __future__ import annotations

from socialpulse.app.boards.model import (
    GREEN,
    INCIDENT_ANNOTATIONS,
    ORANGE,
    RED,
    Board,
    Catalog,
    Panel,
    Query,
    _ratio_stat,
)


def brand_overview(kpi: Catalog) -> Board:
    """Volume, velocity, sentiment, share of voice, engagement, reach, followers, incidents."""
    return Board(
        "socialpulse-brand-overview",
        "brand-overview",
        "SocialPulse / Brand overview",
        "Live mention volume, sentiment, share of voice, engagement, reach, follower growth "
        "and open incidents for one brand, from the SocialPulse workers.",
        [
            Panel(
                "Mentions (5m)",
                "Mentions of the brand in the rolling 5-minute window, chosen platforms.",
                [Query(kpi.total("mentions", "5m"), "mentions")],
                kind="stat",
                width=4,
                height=4,
                min=0,
            ),
            Panel(
                "Mention velocity (15m)",
                f"Over all platforms. {kpi.about('mention_velocity')}",
                [Query(kpi.overall("mention_velocity", "15m"), "per minute")],
                unit="short",
                kind="stat",
                width=4,
                height=4,
            ),
            _ratio_stat(
                kpi,
                "net_sentiment",
                "1h",
                "Net sentiment (1h)",
                [(None, RED), (-0.2, ORANGE), (0, GREEN)],
            ),
            _ratio_stat(
                kpi, "share_of_voice", "1d", "Share of voice (24h)", [(None, ORANGE), (0.5, GREEN)]
            ),
            _ratio_stat(
                kpi,
                "engagement_rate",
                "1h",
                "Engagement rate (1h)",
                [(None, RED), (0.01, ORANGE), (0.015, GREEN)],
            ),
            Panel(
                "Open incidents",
                "Incidents not resolved yet (triggered, acknowledged or snoozed), all severities. "
                "Red while any is triggered and nobody has acknowledged it.",
                [
                    Query(
                        'sum(max by (state, severity) (socialpulse_incidents{brand="$brand"}))',
                        "open",
                    )
                ],
                kind="stat",
                width=4,
                height=4,
                steps=[(None, GREEN), (1, RED)],
                min=0,
            ),
            Panel(
                "Mentions by platform (5m window)",
                "Mentions in the rolling 5-minute window, per platform.",
                [Query(kpi.by_platform("mentions", "5m"), "{{platform}}")],
                min=0,
                preview=True,
            ),
            Panel(
                "Mention velocity by platform (15m window)",
                kpi.about("mention_velocity"),
                [Query(kpi.by_platform("mention_velocity", "15m"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Net sentiment by platform (15m window)",
                f"{kpi.about('net_sentiment')} Below 0: more negative than positive mentions.",
                [Query(kpi.by_platform("net_sentiment", "15m"), "{{platform}}")],
                unit="percentunit",
                steps=[(None, RED), (-0.2, ORANGE), (0, GREEN)],
                min=-1,
                max=1,
                preview=True,
            ),
            Panel(
                "Share of voice (1h and 24h)",
                kpi.about("share_of_voice"),
                [
                    Query(kpi.overall("share_of_voice", "1h"), "1h"),
                    Query(kpi.overall("share_of_voice", "1d"), "24h"),
                ],
                unit="percentunit",
                min=0,
                max=1,
            ),
            Panel(
                "Reach and potential reach (1h window)",
                "reported reach: unique accounts reached as the platforms report it (metric "
                "snapshots). potential_reach: the mention authors' followers added up.",
                [
                    Query(kpi.total("reported_reach", "1h"), "reported reach"),
                    Query(kpi.total("potential_reach", "1h"), "potential reach"),
                ],
                min=0,
            ),
            Panel(
                "Engagement rate (1h) against its benchmark",
                f"{kpi.about('engagement_rate')} The dashed line is the benchmark of alerts.yaml.",
                [
                    Query(kpi.overall("engagement_rate", "1h"), "engagement rate"),
                    Query('max(socialpulse_kpi_benchmark{kpi="engagement_rate"})', "benchmark"),
                ],
                unit="percentunit",
                min=0,
                preview=True,
            ),
            Panel(
                "Follower growth (24h window)",
                f"{kpi.about('follower_net_growth')} Followers: the last count a platform "
                "reported.",
                [
                    Query(kpi.by_platform("follower_net_growth", "1d"), "net growth {{platform}}"),
                    Query(kpi.by_platform("followers", "1d"), "followers {{platform}}"),
                ],
            ),
            Panel(
                "Mentions (15m) against the learned baseline",
                "Mentions per platform, what the baseline expects for this hour of the week, "
                "and the level at which the surge rule fires.",
                [
                    # The rule's own gauge (windows by event time): what it judges.
                    Query(f"max by (platform) ({kpi.gauge('mentions', '15m')})", "{{platform}}"),
                    Query(
                        'max by (platform) (socialpulse_kpi_baseline{brand="$brand", '
                        'platform=~"$platform", kpi="mentions", window="15m"})',
                        "baseline {{platform}}",
                    ),
                    Query(
                        'max by (platform, rule) (socialpulse_alert_rule_trigger_level{brand="'
                        '$brand", platform=~"$platform", kpi="mentions", window="15m", '
                        'bound="upper"})',
                        "{{rule}} fires above ({{platform}})",
                    ),
                ],
                min=0,
            ),
            Panel(
                "Alert levels calibrated to the budget",
                "The level each calibrated rule fires at now, in spreads from the baseline: what "
                "this series' own surges reach as often as the notification budget allows "
                "(alerts.yaml: budget), and the rule's budget in notifications a week.",
                [
                    Query(
                        'max by (platform, rule) (socialpulse_alert_rule_level_z{brand="$brand", '
                        'platform=~"$platform"})',
                        "{{rule}} level ({{platform}})",
                    ),
                    Query(
                        "max by (platform, rule) (socialpulse_alert_rule_budget_per_week"
                        '{brand="$brand", platform=~"$platform"})',
                        "{{rule}} budget a week ({{platform}})",
                    ),
                ],
                min=0,
            ),
            Panel(
                "Alert rules firing",
                "Rules firing now for this brand (any platform).",
                [
                    Query(
                        "sum(max by (rule, platform) "
                        '(socialpulse_alert_rule_firing{brand="$brand"}))',
                        "firing",
                    )
                ],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1, RED)],
            ),
            Panel(
                "Slack alerts sent (1h)",
                "Alert messages posted to Slack in the last hour, all workers.",
                [Query("sum(increase(socialpulse_alerts_sent_total[1h]))", "alerts")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1, ORANGE)],
            ),
        ],
        annotations=INCIDENT_ANNOTATIONS,
    )
