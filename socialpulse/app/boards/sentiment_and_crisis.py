"""The Sentiment and crisis board. Positive/negative/neutral over time and negative share against
its baseline band."""

from __future__ import annotations

from socialpulse.app.boards.model import (
    BLUE,
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


def sentiment_and_crisis(kpi: Catalog) -> Board:
    """Positive/negative/neutral over time and negative share against its baseline band."""
    everywhere = '="all"'  # a KPI's platform="all" series
    negative_band = (
        'max by (bound) (socialpulse_kpi_baseline_band{brand="$brand", platform=~"$platform", '
        'kpi="negative_share", window="15m"})'
    )
    return Board(
        "socialpulse-sentiment",
        "sentiment-crisis",
        "SocialPulse / Sentiment and crisis",
        "Positive, negative and neutral mentions over time, the negative share against what is "
        "normal for this hour, and every alert and incident on the time axis.",
        [
            Panel(
                "Negative mentions (5m)",
                "Negative mentions in the rolling 5-minute window, chosen platforms. The "
                "threshold rule negative_mentions_high pages at its value in alerts.yaml.",
                [Query(kpi.total("mentions_negative", "5m"), "negative")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (15, ORANGE), (30, RED)],
            ),
            _ratio_stat(
                kpi,
                "negative_share",
                "15m",
                "Negative share (15m)",
                [(None, GREEN), (0.2, ORANGE), (0.35, RED)],
            ),
            _ratio_stat(
                kpi,
                "net_sentiment",
                "15m",
                "Net sentiment (15m)",
                [(None, RED), (-0.2, ORANGE), (0, GREEN)],
            ),
            Panel(
                "Average sentiment score (15m)",
                f"Over all platforms. {kpi.about('average_sentiment')}",
                [Query(kpi.overall("average_sentiment", "15m"), "score")],
                kind="stat",
                width=4,
                height=4,
                steps=[(None, RED), (-0.2, ORANGE), (0, GREEN)],
                min=-1,
                max=1,
            ),
            _ratio_stat(
                kpi,
                "inhouse_sentiment_share",
                "15m",
                "Scored in-house (15m)",
                [(None, BLUE)],
            ),
            Panel(
                "Positive, neutral and negative mentions (5m window)",
                "Mentions by sentiment in the rolling 5-minute window, chosen platforms. "
                "Sentiment comes with the event, or SocialPulse scores it (VADER for English, "
                "SnowNLP for Chinese, the Emoji Sentiment Ranking for emoji).",
                [
                    Query(kpi.total("mentions_positive", "5m"), "positive"),
                    Query(kpi.total("mentions_neutral", "5m"), "neutral"),
                    Query(kpi.total("mentions_negative", "5m"), "negative"),
                ],
                min=0,
                width=24,
                preview=True,
            ),
            Panel(
                "Negative share (15m) against its baseline band",
                f"{kpi.about('negative_share')} Baseline: what the negative_spike rule's learned "
                "baseline expects for this hour of the week; band: its normal range (2 spreads); "
                "outside it, a spike is building.",
                [
                    # The rule's own gauge (windows by event time): what it judges.
                    Query(
                        f"max({kpi.gauge('negative_share', '15m', everywhere)})", "negative share"
                    ),
                    Query(
                        'max(socialpulse_kpi_baseline{brand="$brand", platform=~"$platform", '
                        'kpi="negative_share", window="15m"})',
                        "baseline",
                    ),
                    Query(negative_band, "normal {{bound}}"),
                ],
                unit="percentunit",
                min=0,
                max=1,
                preview=True,
            ),
            Panel(
                "Negative mentions by platform (5m window)",
                "Negative mentions per platform in the rolling 5-minute window.",
                [Query(kpi.by_platform("mentions_negative", "5m"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Net sentiment by platform (1h window)",
                kpi.about("net_sentiment"),
                [Query(kpi.by_platform("net_sentiment", "1h"), "{{platform}}")],
                unit="percentunit",
                steps=[(None, RED), (-0.2, ORANGE), (0, GREEN)],
                min=-1,
                max=1,
            ),
            Panel(
                "Where sentiment came from (per second)",
                "Mentions by the source of their sentiment: upstream (in the event), vader, "
                "snownlp or emoji (scored here). All workers.",
                [
                    Query(
                        "sum by (source) (rate(socialpulse_mentions_sentiment_total[1m]))",
                        "{{source}}",
                    )
                ],
                unit="ops",
                min=0,
            ),
            Panel(
                "Alert rules firing",
                "1 while a rule fires for this brand on a platform.",
                [
                    Query(
                        'max by (rule, platform) (socialpulse_alert_rule_firing{brand="$brand"})',
                        "{{rule}} {{platform}}",
                    )
                ],
                min=0,
                max=1,
            ),
            Panel(
                "Useful alerts by rule (30 days)",
                "Of this brand's incidents of the last 30 days that the team judged (the "
                "Useful / Not useful buttons, `socialpulse incidents verdict`), the share "
                "judged useful, by the rule that opened them. A rule that stays low pages for "
                "nothing: raise its level or silence the events it keeps firing on. NaN: no "
                "verdict on that rule yet.",
                [
                    Query(
                        # From the counts, not socialpulse_alert_useful_ratio (exported only
                        # where there are verdicts): every rule shows, NaN until judged.
                        'max by (rule) (socialpulse_alert_verdicts{brand="$brand", '
                        'verdict="useful"}) / sum by (rule) (max by (rule, verdict) '
                        '(socialpulse_alert_verdicts{brand="$brand"}))',
                        "{{rule}}",
                    )
                ],
                unit="percentunit",
                kind="bargauge",
                steps=[(None, RED), (0.5, ORANGE), (0.8, GREEN)],
                min=0,
                max=1,
            ),
            Panel(
                "Verdicts by rule (30 days)",
                "Incidents of the last 30 days judged useful or not useful, by rule.",
                [
                    Query(
                        'max by (rule, verdict) (socialpulse_alert_verdicts{brand="$brand"})',
                        "{{rule}} {{verdict}}",
                    )
                ],
                kind="bargauge",
                min=0,
            ),
            Panel(
                "Silenced firings (24h)",
                "Firings a silence kept from notifying in the last 24 hours, by rule: "
                "still evaluated and on their incident's timeline (`socialpulse incidents "
                "show`), and opened if they still fire when the silence ends.",
                [
                    Query(
                        "sum by (rule) (increase(socialpulse_alert_silenced_firings_total"
                        '{brand="$brand"}[24h]))',
                        "{{rule}}",
                    )
                ],
                kind="bargauge",
                min=0,
            ),
            Panel(
                "Incidents held by a silence",
                "Incidents open now whose firing a silence holds (nobody notified).",
                [
                    Query(
                        'sum(max by (severity) (socialpulse_incidents{brand="$brand", '
                        'state="silenced"}))',
                        "silenced",
                    )
                ],
                kind="stat",
                min=0,
            ),
        ],
        annotations=INCIDENT_ANNOTATIONS,
    )
