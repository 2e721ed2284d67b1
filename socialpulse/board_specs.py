"""What each Grafana board shows: panels, their PromQL, units, thresholds and descriptions.

The boards in grafana/dashboards/ are generated from these specs (``socialpulse boards build``),
so a KPI's description carries the formula of config/kpis.yaml, and a test checks the committed
JSON is what the specs give. Aggregation keeps the numbers right with 1 or N workers: a
brand-level gauge is exported alike by every worker, so it is ``max``-ed across them (per
platform, then summed over platforms); pipeline counters are per worker, so they are summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from socialpulse.settings import KpiSpec, Settings

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"
Steps = list[tuple[float | None, str]]  # (from value, colour); the first starts at None


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One Grafana panel."""

    title: str
    description: str
    queries: list[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat, bargauge
    width: int = 12
    height: int = 8
    steps: Steps = field(default_factory=lambda: [(None, GREEN)])
    min: float | None = None
    max: float | None = None
    preview: bool = False  # drawn in the README's PNG preview of the board


@dataclass(frozen=True)
class Annotation:
    """Marks on the time axis where a PromQL expression has a value."""

    name: str
    expr: str
    color: str
    text: str


@dataclass(frozen=True)
class Board:
    """One Grafana dashboard."""

    uid: str
    slug: str  # file name in grafana/dashboards/
    title: str
    description: str
    panels: list[Panel]
    variables: tuple[str, ...] = ("brand", "platform")
    annotations: list[Annotation] = field(default_factory=list)
    time_from: str = "now-30m"


BRAND = 'brand="$brand"'


def _sel(metric: str, window: str | None, platform: str = '=~"$platform"') -> str:
    labels = [BRAND, f"platform{platform}"]
    if window:
        labels.append(f'window="{window}"')
    return f"{metric}{{{', '.join(labels)}}}"


def total(metric: str, window: str) -> str:
    """A count over the chosen platforms: per platform the max over workers, then the sum."""
    return f"sum(max by (platform) ({_sel(metric, window)}))"


def by_platform(metric: str, window: str) -> str:
    """A value per chosen platform (max over workers)."""
    return f"max by (platform) ({_sel(metric, window)})"


def overall(metric: str, window: str) -> str:
    """A KPI over all platforms together (its platform="all" series)."""
    everywhere = '="all"'
    return f"max({_sel(metric, window, everywhere)})"


class Catalog:
    """The KPIs of config/kpis.yaml by name: metric names and descriptions with formulas."""

    def __init__(self, settings: Settings):
        self.specs: dict[str, KpiSpec] = {k.name: k for k in settings.kpis.kpis}
        self.settings = settings

    def metric(self, name: str) -> str:
        """Prometheus name of a KPI or counter."""
        spec = self.specs.get(name)
        return spec.metric_name if spec else f"socialpulse_{name}"

    def about(self, *names: str) -> str:
        """'name = formula (help)' for each KPI named, for a panel description."""
        parts = []
        for name in names:
            spec = self.specs.get(name)
            if spec is None:
                parts.append(f"{name}: the {name.replace('_', ' ')} counted in the window.")
            else:
                parts.append(f"{name} = {spec.formula}. {spec.help}")
        return " ".join(parts)


def boards(settings: Settings) -> list[Board]:
    """Every board, in the order the README lists them."""
    kpi = Catalog(settings)
    return [
        brand_overview(kpi),
        sentiment_and_crisis(kpi),
        engagement_and_content(kpi),
        conversion_and_roi(kpi),
        customer_care(kpi),
        pipeline_health(),
        targets(),
    ]


def _ratio_stat(
    kpi: Catalog, name: str, window: str, title: str, steps: Steps, preview: bool = False
) -> Panel:
    return Panel(
        title,
        f"Over all platforms, rolling {window} window. {kpi.about(name)}",
        [Query(overall(kpi.metric(name), window), name)],
        unit="percentunit",
        kind="stat",
        width=4,
        height=4,
        steps=steps,
        preview=preview,
    )


INCIDENT_ANNOTATIONS = [
    Annotation(
        "Alerts firing",
        'max by (rule, platform) (socialpulse_alert_rule_firing{brand="$brand"}) > 0',
        RED,
        "{{rule}} firing on {{platform}}",
    ),
    Annotation(
        "Incidents opened",
        'sum by (severity) (increase(socialpulse_incidents_opened_total{brand="$brand"}[1m])) > 0',
        ORANGE,
        "{{severity}} incident opened",
    ),
]


def brand_overview(kpi: Catalog) -> Board:
    """Volume, velocity, sentiment, share of voice, engagement, reach, followers, incidents."""
    m = kpi.metric
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
                [Query(total(m("mentions"), "5m"), "mentions")],
                kind="stat",
                width=4,
                height=4,
                min=0,
            ),
            Panel(
                "Mention velocity (15m)",
                f"Over all platforms. {kpi.about('mention_velocity')}",
                [Query(overall(m("mention_velocity"), "15m"), "per minute")],
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
                [Query(by_platform(m("mentions"), "5m"), "{{platform}}")],
                min=0,
                preview=True,
            ),
            Panel(
                "Mention velocity by platform (15m window)",
                kpi.about("mention_velocity"),
                [Query(by_platform(m("mention_velocity"), "15m"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Net sentiment by platform (15m window)",
                f"{kpi.about('net_sentiment')} Below 0: more negative than positive mentions.",
                [Query(by_platform(m("net_sentiment"), "15m"), "{{platform}}")],
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
                    Query(overall(m("share_of_voice"), "1h"), "1h"),
                    Query(overall(m("share_of_voice"), "1d"), "24h"),
                ],
                unit="percentunit",
                min=0,
                max=1,
            ),
            Panel(
                "Reach and potential reach (1h window)",
                "reach: unique viewers of the impressions (HyperLogLog, ~0.8% error). "
                "potential_reach: the mention authors' followers added up.",
                [
                    Query(total(m("reach"), "1h"), "reach"),
                    Query(total(m("potential_reach"), "1h"), "potential reach"),
                ],
                min=0,
            ),
            Panel(
                "Engagement rate (1h) against its benchmark",
                f"{kpi.about('engagement_rate')} The dashed line is the benchmark of alerts.yaml.",
                [
                    Query(overall(m("engagement_rate"), "1h"), "engagement rate"),
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
                    Query(by_platform(m("follower_net_growth"), "1d"), "net growth {{platform}}"),
                    Query(by_platform(m("followers"), "1d"), "followers {{platform}}"),
                ],
            ),
            Panel(
                "Mentions (15m) against the learned baseline",
                "Mentions per platform, what the baseline expects for this hour of the week, "
                "and the level at which the surge rule fires.",
                [
                    Query(by_platform(m("mentions"), "15m"), "{{platform}}"),
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


def sentiment_and_crisis(kpi: Catalog) -> Board:
    """Positive/negative/neutral over time and negative share against its baseline band."""
    m = kpi.metric
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
                [Query(total(m("mentions_negative"), "5m"), "negative")],
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
                [Query(overall(m("average_sentiment"), "15m"), "score")],
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
                    Query(total(m("mentions_positive"), "5m"), "positive"),
                    Query(total(m("mentions_neutral"), "5m"), "neutral"),
                    Query(total(m("mentions_negative"), "5m"), "negative"),
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
                    Query(overall(m("negative_share"), "15m"), "negative share"),
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
                [Query(by_platform(m("mentions_negative"), "5m"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Net sentiment by platform (1h window)",
                kpi.about("net_sentiment"),
                [Query(by_platform(m("net_sentiment"), "1h"), "{{platform}}")],
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
        ],
        annotations=INCIDENT_ANNOTATIONS,
    )


def engagement_and_content(kpi: Catalog) -> Board:
    """Engagement, applause, amplification, virality, CTR, completion."""
    m = kpi.metric
    rate_names = [
        ("engagement_rate", "Engagement rate"),
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
                    Query(total(m(name), "5m"), name)
                    for name in ("likes", "comments", "shares", "saves", "clicks")
                ],
                min=0,
                preview=True,
            ),
            Panel(
                "Engagements by platform (1h window)",
                kpi.about("engagements"),
                [Query(by_platform(m("engagements"), "1h"), "{{platform}}")],
                min=0,
            ),
            Panel(
                "Engagement rate by platform (1h window)",
                f"{kpi.about('engagement_rate')} Benchmark from alerts.yaml dashed.",
                [
                    Query(by_platform(m("engagement_rate"), "1h"), "{{platform}}"),
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
                    Query(overall(m("applause_rate"), "1h"), "applause"),
                    Query(overall(m("amplification_rate"), "1h"), "amplification"),
                    Query(overall(m("comment_rate"), "1h"), "comment"),
                ],
                unit="percentunit",
                min=0,
            ),
            Panel(
                "Virality and CTR (1h window)",
                kpi.about("virality_rate", "ctr"),
                [
                    Query(overall(m("virality_rate"), "1h"), "virality"),
                    Query(overall(m("ctr"), "1h"), "CTR"),
                ],
                unit="percentunit",
                min=0,
            ),
            Panel(
                "Video starts and completions (1h window)",
                f"The counts behind the completion rate. {kpi.about('completion_rate')}",
                [
                    Query(total(m("video_starts"), "1h"), "starts"),
                    Query(total(m("video_completes"), "1h"), "completes"),
                ],
                min=0,
            ),
            Panel(
                "Impressions and reach (1h window)",
                "impressions: times content was shown; reach: unique viewers (HyperLogLog).",
                [
                    Query(total(m("impressions"), "1h"), "impressions"),
                    Query(total(m("reach"), "1h"), "reach"),
                ],
                min=0,
            ),
        ],
    )


def conversion_and_roi(kpi: Catalog) -> Board:
    """Clicks to revenue, cost KPIs and ROI, overall and per campaign."""
    m = kpi.metric

    def money(name: str, title: str) -> Panel:
        return Panel(
            title,
            f"Over all platforms, rolling 24h window. {kpi.about(name)} In the currency the "
            "events report.",
            [Query(overall(m(name), "1d"), name)],
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
                    Query(total(m("revenue"), "1h"), "revenue"),
                    Query(total(m("spend"), "1h"), "spend"),
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
                    Query(total(m(name), "1h"), name)
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
                    Query(overall(m("roi"), "1h"), "ROI"),
                    Query(overall(m("conversion_rate"), "1h"), "conversion rate"),
                ],
                unit="percentunit",
            ),
            Panel(
                "CPC, CPM and CAC by platform (1h window)",
                kpi.about("cpc", "cpm", "cac"),
                [
                    Query(by_platform(m("cpc"), "1h"), "CPC {{platform}}"),
                    Query(by_platform(m("cpm"), "1h"), "CPM {{platform}}"),
                    Query(by_platform(m("cac"), "1h"), "CAC {{platform}}"),
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


def customer_care(kpi: Catalog) -> Board:
    """Response time, response rate, backlog, NPS and CSAT."""
    m = kpi.metric
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
                [Query(f"max({_sel(m('response_time_p90_seconds'), '1h')})", "p90")],
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
                [Query(total(m("unanswered"), "1h"), "unanswered")],
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
                        by_platform(m("response_time_median_seconds"), "1h"), "median {{platform}}"
                    ),
                    Query(by_platform(m("response_time_p90_seconds"), "1h"), "p90 {{platform}}"),
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
                    Query(by_platform(m("response_rate"), "1h"), "{{platform}}"),
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
                    Query(by_platform(m("unanswered"), "1h"), "waiting {{platform}}"),
                    Query(
                        by_platform(m("oldest_unanswered_seconds"), "1h"),
                        "oldest (s) {{platform}}",
                    ),
                ],
                min=0,
            ),
            Panel(
                "Inbound and replies (1h window)",
                "Messages needing a reply, the brand's replies, and responses (first replies "
                "matched to an inbound conversation).",
                [
                    Query(total(m("inbound_needing_reply"), "1h"), "inbound"),
                    Query(total(m("brand_replies"), "1h"), "replies"),
                    Query(total(m("responses"), "1h"), "responses"),
                ],
                min=0,
            ),
            Panel(
                "NPS and CSAT (24h window)",
                kpi.about("nps", "csat"),
                [
                    Query(overall(m("nps"), "1d"), "NPS"),
                    Query(overall(m("csat"), "1d"), "CSAT"),
                ],
                unit="percentunit",
                min=-1,
                max=1,
            ),
        ],
    )


def pipeline_health() -> Board:
    """Throughput, lag, latency, dead letters, Redis, Slack, incidents and the gateway."""
    return Board(
        "socialpulse-pipeline",
        "pipeline-health",
        "SocialPulse / Pipeline health",
        "Is SocialPulse itself keeping up: throughput, consumer lag, latency, dead letters, "
        "Redis round trips, Slack delivery, incidents and the ingest gateway. Summed over "
        "every worker.",
        [
            Panel(
                "Events counted per second",
                "Events whose counts reached Redis, per topic, all workers (recorded: "
                "topic:socialpulse_events_counted:rate1m).",
                [Query("sum by (topic) (topic:socialpulse_events_counted:rate1m)", "{{topic}}")],
                unit="ops",
                kind="stat",
                width=6,
                height=4,
                steps=[(None, BLUE)],
            ),
            Panel(
                "Consumer lag",
                "Messages not processed yet, all partitions (each reported by the worker "
                "that owns it).",
                [Query("sum(topic:socialpulse_consumer_lag_messages:sum)", "lag")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1000, ORANGE), (10000, RED)],
            ),
            Panel(
                "Arrival to visible, p99 (5m)",
                "From a message's arrival in Kafka to its counts in Redis, 99th percentile over "
                "all workers.",
                [Query("max(topic:socialpulse_arrival_to_visible_seconds:p99_5m)", "p99")],
                unit="s",
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
            ),
            Panel(
                "Slack outbox",
                "Slack notices waiting to be delivered (retried with backoff while Slack fails).",
                [Query("max(socialpulse_slack_outbox_depth)", "waiting")],
                kind="stat",
                width=6,
                height=4,
                steps=[(None, GREEN), (5, ORANGE), (50, RED)],
            ),
            Panel(
                "Throughput per topic",
                "Events read, counted, duplicates (redeliveries, ignored by id) and too late, "
                "per second, all workers.",
                [
                    Query(
                        "sum by (topic) (topic:socialpulse_events_consumed:rate1m)",
                        "read {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (topic:socialpulse_events_counted:rate1m)",
                        "counted {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (rate(socialpulse_events_duplicate_total[1m]))",
                        "duplicate {{topic}}",
                    ),
                    Query(
                        "sum by (topic) (rate(socialpulse_events_too_late_total[1m]))",
                        "too late {{topic}}",
                    ),
                ],
                unit="ops",
                min=0,
                preview=True,
            ),
            Panel(
                "Consumer lag per partition",
                "Messages behind per partition of the event topics.",
                [
                    Query(
                        "max by (topic, partition) (socialpulse_consumer_lag_messages)",
                        "{{topic}}[{{partition}}]",
                    )
                ],
                min=0,
                steps=[(None, GREEN), (1000, ORANGE), (10000, RED)],
            ),
            Panel(
                "Latency: arrival and event time to visible",
                "p50 and p99 of arrival (Kafka timestamp) to counts in Redis, and p99 of the "
                "event's own time to counts in Redis (includes the source's delay).",
                [
                    Query(
                        "max by (topic) (topic:socialpulse_arrival_to_visible_seconds:p50_5m)",
                        "arrival p50 {{topic}}",
                    ),
                    Query(
                        "max by (topic) (topic:socialpulse_arrival_to_visible_seconds:p99_5m)",
                        "arrival p99 {{topic}}",
                    ),
                    Query(
                        "max by (topic) (topic:socialpulse_event_to_visible_seconds:p99_5m)",
                        "event time p99 {{topic}}",
                    ),
                ],
                unit="s",
                min=0,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
                preview=True,
            ),
            Panel(
                "Dead letters and filtered events (5m)",
                "Events sent to the dead-letter topic by reason, and events left out of the "
                "KPIs (bots, over-rate authors), in the last 5 minutes, all workers.",
                [
                    Query(
                        "sum by (reason) (topic_reason:socialpulse_events_invalid:increase5m)",
                        "dead letter: {{reason}}",
                    ),
                    Query(
                        "sum by (reason) (increase(socialpulse_events_filtered_total[5m]))",
                        "filtered: {{reason}}",
                    ),
                ],
                min=0,
                steps=[(None, GREEN), (1, ORANGE)],
            ),
            Panel(
                "Redis round trip p99",
                "99th percentile of the Redis round trips: a batch's counts, and a scrape's "
                "rolling windows. Retries: batches retried while Redis did not answer.",
                [
                    Query(
                        "max by (operation) (operation:socialpulse_redis_roundtrip_seconds:p99_5m)",
                        "{{operation}}",
                    ),
                    Query("sum(increase(socialpulse_redis_retries_total[5m]))", "retries (5m)"),
                ],
                unit="s",
                min=0,
            ),
            Panel(
                "Slack deliveries",
                "Slack calls per minute by outcome: sent; failed (retried later); refused "
                "(Slack said no for good).",
                [
                    Query(
                        "sum by (outcome) (increase(socialpulse_slack_deliveries_total[1m]))",
                        "{{outcome}}",
                    )
                ],
                min=0,
            ),
            Panel(
                "Open incidents by state and severity",
                "Incidents not resolved yet, all brands.",
                [
                    Query(
                        "sum by (state, severity) (max by (brand, state, severity) "
                        "(socialpulse_incidents))",
                        "{{severity}} {{state}}",
                    )
                ],
                min=0,
            ),
            Panel(
                "Rule evaluations and evaluation delay",
                "Brand evaluations per second (every rule and baseline of a brand at a tick, "
                "done once by the worker holding the evaluation lock), and seconds from a tick "
                "to its evaluation.",
                [
                    Query("sum(rate(socialpulse_rule_evaluations_total[1m]))", "evaluations/s"),
                    Query("max(socialpulse_alert_evaluation_delay_seconds)", "delay (s)"),
                ],
                min=0,
            ),
            Panel(
                "Ingest gateway: items and refusals",
                "Items posted to `socialpulse gateway` per second by outcome (accepted: written "
                "to Kafka; rejected: invalid, with a reason), and whole requests refused in the "
                "last 5 minutes by reason (unauthorized, bad signature, too large, busy, Kafka "
                "unavailable), and events waiting for Kafka's acknowledgement. Empty when no "
                "gateway runs.",
                [
                    Query(
                        "sum by (outcome) (rate(socialpulse_ingest_events_total[1m]))",
                        "{{outcome}}",
                    ),
                    Query(
                        "sum by (reason) (increase(socialpulse_ingest_refused_requests_total[5m]))",
                        "refused (5m): {{reason}}",
                    ),
                    Query("sum(socialpulse_ingest_in_flight_events)", "waiting for Kafka"),
                ],
                min=0,
            ),
            Panel(
                "Ingest gateway: answer time p99",
                "99th percentile of the time to answer a request, per route, Kafka's "
                "acknowledgement included (5 minutes).",
                [
                    Query(
                        "histogram_quantile(0.99, sum by (le, route) "
                        "(rate(socialpulse_ingest_request_duration_seconds_bucket[5m])))",
                        "p99 {{route}}",
                    ),
                ],
                unit="s",
                min=0,
                steps=[(None, GREEN), (1, ORANGE), (5, RED)],
            ),
        ],
        variables=(),
    )


def targets() -> Board:
    """Each SMART target's progress and whether it is on track."""
    return Board(
        "socialpulse-targets",
        "targets",
        "SocialPulse / Targets",
        "Each SMART target of alerts.yaml: how far from its start value to its goal, how much "
        "of the time to the deadline is used, and whether the pace reaches it in time.",
        [
            Panel(
                "On track",
                "1 (green) when the target is reached, or when the pace since its start "
                "reaches it by the deadline; 0 (red) when not.",
                [
                    Query(
                        'max by (target) (socialpulse_target_on_track{brand="$brand"})',
                        "{{target}}",
                    )
                ],
                kind="stat",
                width=8,
                height=5,
                steps=[(None, RED), (1, GREEN)],
                min=0,
                max=1,
            ),
            Panel(
                "Progress and time used",
                "progress = (KPI now - start value) / (target - start value); time used = share "
                "of the time from start to deadline gone. On track while progress >= time used.",
                [
                    Query(
                        'max by (target) (socialpulse_target_progress_ratio{brand="$brand"})',
                        "{{target}} progress",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_time_used_ratio{brand="$brand"})',
                        "{{target}} time used",
                    ),
                ],
                unit="percentunit",
                kind="bargauge",
                width=16,
                height=5,
                steps=[(None, RED), (0.5, ORANGE), (1, GREEN)],
                min=0,
                max=1,
            ),
            Panel(
                "Projection, start value and goal",
                "Where the pace since the start lands each target's KPI by the deadline, "
                "against where it started and the goal.",
                [
                    Query(
                        'max by (target) (socialpulse_target_projected_value{brand="$brand"})',
                        "{{target}} projected at deadline",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_value{brand="$brand"})',
                        "{{target}} goal",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_start_value{brand="$brand"})',
                        "{{target}} start",
                    ),
                ],
                width=24,
                preview=True,
            ),
            Panel(
                "Progress over time",
                "Progress of each target against the share of time used, over the board's "
                "time range.",
                [
                    Query(
                        'max by (target) (socialpulse_target_progress_ratio{brand="$brand"})',
                        "{{target}} progress",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_time_used_ratio{brand="$brand"})',
                        "{{target}} time used",
                    ),
                ],
                unit="percentunit",
                width=24,
                preview=True,
            ),
        ],
        variables=("brand",),
        time_from="now-6h",
    )


__all__ = ["Annotation", "Board", "Panel", "Query", "boards"]
