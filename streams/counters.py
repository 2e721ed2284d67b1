"""Which rolling counters an event increments, and how bucket hashes add up (pure, no I/O).

Counters are named as in the KPI catalog (shared/KPIS.md): ``mentions``, ``mentions_negative``,
``likes``, ``shares``, ... Each is kept per platform; a bucket hash field is
``<counter>|<platform>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache

from streams.events import INTERACTION_KINDS, SNAPSHOT_METRICS, Interaction, Mention
from streams.sentiment import Sentiment

# Interaction kind -> the catalog counter it adds 1 to.
KIND_COUNTER = {
    **{
        kind: f"{kind}s"
        for kind in INTERACTION_KINDS
        if kind not in ("delivered", "spend", "followers", "content_cost")
    },
    "delivered": "delivered",
}
# Survey answers also count by band: NPS promoters 9-10 and detractors 0-6; CSAT 4-5 satisfied.
SURVEY_BANDS = {
    "nps_response": (("nps_promoters", 9, 10), ("nps_detractors", 0, 6)),
    "csat_response": (("csat_satisfied", 4, 5),),
}
# Interaction kind -> the catalog counter its ``value`` is added to (money, in one currency).
# A content item's production cost (its ROI: streams' content_roi KPI in kpis.yaml).
KIND_AMOUNT = {"order": "revenue", "spend": "spend", "content_cost": "production_cost"}
# mentions_scored_inhouse: mentions whose sentiment SocialPulse scored (none came upstream).
MENTION_COUNTERS = (
    "mentions",
    "mentions_positive",
    "mentions_negative",
    "mentions_neutral",
    "mentions_scored_inhouse",
    "sentiment_score_sum",  # the mentions' scores in [-1, 1] added up (upstream or in-house)
)
# Customer care: inbound messages that need a reply, the brand's replies, and responses (an
# inbound conversation's first brand reply, matched in Redis; see streams.customer_care).
CARE_COUNTERS = ("inbound_needing_reply", "brand_replies", "responses")
# Customer-care values that do not add up across platforms: read per platform and for "all"
# (response-time quantiles of the window's responses; the backlog now, not windowed).
CARE_READINGS = (
    "response_time_median_seconds",
    "response_time_p90_seconds",
    "unanswered",
    "oldest_unanswered_seconds",
)
# Events left out of the KPIs as bots or over-rate authors, counted so boards show them.
FILTERED = "filtered"
# Distinct counts, kept as Redis HyperLogLogs (standard error ~0.81%), and the counter whose
# platforms can have members: unique mention authors, and reach = unique impression viewers.
UNIQUE_SOURCE = {"unique_authors": "mentions", "reach": "impressions"}
# Values that exist only when known, so a formula over them has no value rather than a wrong
# one: the last follower count reported (a gauge, not windowed), and the mentions of the
# brand's configured competitors (for share of voice).
FOLLOWERS = "followers"
COMPETITOR_MENTIONS = "competitor_mentions"
OPTIONAL_COUNTERS = (FOLLOWERS, COMPETITOR_MENTIONS, *CARE_READINGS)
ALL_COUNTERS = (
    *MENTION_COUNTERS,
    *CARE_COUNTERS,
    "potential_reach",  # sum of the authors' follower counts over mentions
    *dict.fromkeys([*KIND_COUNTER.values(), *KIND_AMOUNT.values(), *SNAPSHOT_METRICS.values()]),
    "snapshot_corrections",  # snapshot totals that went down (streams.snapshots)
    *(band for bands in SURVEY_BANDS.values() for band, _, _ in bands),
    FILTERED,
    *UNIQUE_SOURCE,
    *OPTIONAL_COUNTERS,
)
# The platform label of values over all platforms together.
ALL_PLATFORMS = "all"
# Counters each event adds one to (or nothing): a window's count of them only grows while its
# buckets fill, so a rising rule on one that holds on part of a window holds on all of it
# (alerts.detection.engine.Detector.early). Amounts, scores and running totals' deltas can fall.
ONE_PER_EVENT = frozenset(
    [*(c for c in MENTION_COUNTERS if c != "sentiment_score_sum"), *CARE_COUNTERS]
)
# Counters whose running total can fall (scores in [-1, 1] added up): exported as a gauge, read
# with delta(), since a counter that falls is not valid OpenMetrics and increase() would take
# every fall for a restart.
CAN_FALL = frozenset(["sentiment_score_sum"])

# Counters the count script keeps a running total of, per brand and platform (exported as
# socialpulse_counted_<counter>_total): every event-counted counter and snapshot metric; not
# distinct counts, optional values (followers, care readings, competitors' mentions) or
# customer-care responses (matched to a conversation later, not counted per event).
RUNNING_TOTALS = frozenset(ALL_COUNTERS) - {*UNIQUE_SOURCE, *OPTIONAL_COUNTERS, "responses"}

# The running total /metrics shows from 0 on every configured platform of a brand, before its
# first count (one series a platform, so Prometheus knows the platform before any count).
STARTS_AT_ZERO = "mentions"

# (counter, platform) -> count (or amount) over a window
WindowCounts = dict[tuple[str, str], float]


def field(counter: str, platform: str) -> str:
    """Bucket hash field for a counter on a platform."""
    return f"{counter}|{platform}"


# One increment of a bucket hash field: (field, None) adds one, (field, amount) adds an amount
# (money, reach, sentiment scores). The field is a name as it is, whatever characters its
# content id or campaign holds: the store never parses it. A plain tuple, not a NamedTuple:
# the planner makes several per event, and a NamedTuple costs ten times as much to make.
Add = tuple[str, float | None]


def mention_fields(mention: Mention, sentiment: Sentiment) -> list[Add]:
    """Fields a mention increments: the mention, its sentiment label, and potential reach (and
    inbound_needing_reply for a customer-care message)."""
    if mention.from_brand:
        return [(field("brand_replies", mention.platform), None)]
    fields: list[Add] = [
        (field("mentions", mention.platform), None),
        (field(f"mentions_{sentiment.label}", mention.platform), None),
    ]
    if sentiment.source != "upstream":
        fields.append((field("mentions_scored_inhouse", mention.platform), None))
    if sentiment.score:
        fields.append((field("sentiment_score_sum", mention.platform), sentiment.score))
    if mention.author_followers:
        fields.append((field("potential_reach", mention.platform), mention.author_followers))
    if mention.needs_reply:
        fields.append((field("inbound_needing_reply", mention.platform), None))
    return fields


def unique_member(event: Mention | Interaction) -> tuple[str, str] | None:
    """(field, member) the event adds to a distinct count: its author for unique_authors, the
    viewer of an impression for reach (not of an impressions ``count``); None for others."""
    if isinstance(event, Mention):
        if event.from_brand:
            return None
        return field("unique_authors", event.platform), event.author.casefold()
    if event.kind == "impression" and event.count == 1:
        # An event standing for many impressions has no one viewer to count.
        return field("reach", event.platform), event.user_id
    return None


def interaction_fields(interaction: Interaction) -> list[Add]:
    """Fields an interaction increments: the counter of its kind (+1, or +count for an event
    that stands for several) and, for money kinds, the amount counter (+value)."""
    kind, platform, value = interaction.kind, interaction.platform, interaction.value
    many = float(interaction.count) if interaction.count != 1 else None
    fields: list[Add] = (
        [(field(KIND_COUNTER[kind], platform), many)] if kind in KIND_COUNTER else []
    )
    if kind in KIND_AMOUNT and value is not None:
        fields.append((field(KIND_AMOUNT[kind], platform), value))
    for band, low, high in SURVEY_BANDS.get(kind, ()):
        if value is not None and low <= value <= high:
            fields.append((field(band, platform), None))
    return fields


# Dimensions besides platform an interaction is also counted by, over all platforms.
DIMENSIONS = ("campaign", "content")


def dimension_fields(interaction: Interaction, fields: Sequence[Add]) -> list[Add]:
    """The interaction's ``fields`` (from :func:`interaction_fields`) again per content item
    and, when it has one, per campaign: ``<counter>|content:<content_id>`` and
    ``<counter>|campaign:<campaign>``, over all platforms."""
    members = [f"|content:{interaction.content_id}"]
    if interaction.campaign:
        members.append(f"|campaign:{interaction.campaign}")
    counters = [(name[: name.index("|")], amount) for name, amount in fields]
    return [(counter + member, amount) for member in members for counter, amount in counters]


def gauge_value(interaction: Interaction) -> tuple[str, float] | None:
    """(field, value) of a snapshot the event reports (``followers``), or None."""
    if interaction.kind == "followers" and interaction.value is not None:
        return field(FOLLOWERS, interaction.platform), interaction.value
    return None


@cache
def filtered_fields(platform: str) -> tuple[Add, ...]:
    """Fields an event left out of the KPIs increments instead of its own."""
    return ((field(FILTERED, platform), None),)


def count_value(count: str | int | float) -> int | float:
    """A bucket field's value as Redis returns it: counts stay whole numbers (10, not 10.0),
    amounts keep their cents."""
    number = float(count)
    return int(number) if number.is_integer() else number


def sum_buckets(buckets: Iterable[Mapping[str, str | int]]) -> WindowCounts:
    """Add bucket hashes (field -> count, as Redis returns them) per (counter, platform)."""
    total: WindowCounts = {}
    for bucket in buckets:
        for name, count in bucket.items():
            counter, _, platform = str(name).partition("|")
            key = (counter, platform)
            total[key] = total.get(key, 0) + count_value(count)
    return total


def by_counter(counts: WindowCounts, counter: str) -> dict[str, float]:
    """One counter's value per platform."""
    return {platform: n for (name, platform), n in counts.items() if name == counter}
