"""Event schemas (schema version 1); streams.decoding turns Kafka message bytes into them.

Both topics carry UTF-8 JSON, keyed by brand id: one event object per message, or an
envelope, a JSON array of up to :data:`MAX_ENVELOPE_EVENTS` events of one brand, for producers
that batch (the simulator, file ingest). Envelopes cut the per-message cost of Kafka and Faust;
each event in one is validated, counted or dead-lettered on its own.

Mention (topic ``social.mentions``): someone wrote about a brand.

============== ======== ===========================================================
field          required meaning
============== ======== ===========================================================
schema_version no       1 (the only version so far; others are refused)
id             yes      unique event id from the source (any text without spaces or control
                        characters, up to 512: a post URL is fine); redeliveries reuse it
ts             yes      event time, ISO 8601 with a timezone (``2026-11-22T09:30:00Z``)
platform       yes      x, instagram, facebook, linkedin, tiktok, youtube, weibo, ...
brand          yes      brand id from config/brands.yaml
author         yes      author handle or id on that platform
text           yes      the mention's text (may be empty for media-only posts)
sentiment      no       upstream sentiment: a label (positive/negative/neutral) or a
                        score in [-1, 1]; when absent, SocialPulse scores the text
author_followers no     follower count of the author (for potential reach), at most 1e12
url, lang      no       link to the post; language code
is_bot         no       true when the source flags the author as a bot (left out of KPIs)
needs_reply    no       true for an inbound message the brand should answer (customer care)
from_brand     no       true for the brand's own reply; it is not counted as a mention
conversation_id no      the thread a message belongs to (default: its own id)
reply_to       for      with from_brand: the conversation (or message id) it answers;
               replies  defaults to conversation_id
============== ======== ===========================================================

Interaction (topic ``social.interactions``): someone acted on a brand's content.

============== ======== ===========================================================
field          required meaning
============== ======== ===========================================================
schema_version no       1
id, ts, platform, brand  as for mentions
kind           yes      one of :data:`INTERACTION_KINDS` (like, comment, share, ...)
content_id     yes      the post, video or ad acted on
user_id        yes      who acted
campaign       no       campaign id, when the content belongs to one
value          for some 0 to 1e12: required for ``order`` (revenue), ``spend`` (amount),
                        ``followers`` (the follower count then), ``nps_response`` (0-10)
                        and ``csat_response`` (1-5)
============== ======== ===========================================================

Metric snapshot (topic ``social.snapshots``): the running totals of one object (a post, video,
story, ad, or the account) as the platform reported them at a time, polled from its insights or
ads reporting. The worker counts the increments between successive snapshots of an object
(streams.snapshots), exactly once; a snapshot itself is never an increment.

============== ======== ===========================================================
field          required meaning
============== ======== ===========================================================
schema_version no       1
ts, platform, brand yes as for mentions; ts is when the totals were read (for a report row
                        over a period, the period's end)
object_id      yes      the post, video, story or ad (or the account) the totals are of
object_type    no       post (default), video, story, reel, ad, account, ...
published_at   no       when the object was published (for a report row, the period's
                        start; up to 5 minutes after ts is clock skew, taken as ts): its
                        first snapshot then counts from zero at that time;
                        without it, the first snapshot is a starting point that adds nothing
metrics        yes      totals by name (:data:`SNAPSHOT_METRICS`), whole numbers but
                        ``spend`` and ``revenue``, 0 to 1e12 (numeric text such as
                        ``"182044"`` too); other names are left out; at least one of ours
campaign       no       campaign id (ads)
id             no       default ``<object_id>@<ts>``; snapshots are matched by object, not id
============== ======== ===========================================================

Numbers are finite and bounded (:data:`MAX_NUMBER`): NaN, infinities and values beyond the
bound are refused as ``invalid_fields`` naming the field, so no sum can become infinite.
Strings are valid Unicode: a lone surrogate escape (``"\\ud800"``) is refused the same way.
Within an envelope, each event stands alone: one such event is dead-lettered, the others count.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 256 * 1024
MAX_ENVELOPE_BYTES = 1024 * 1024  # Kafka's default message.max.bytes
MAX_ENVELOPE_EVENTS = 1000

SENTIMENT_LABELS = ("positive", "negative", "neutral")
INTERACTION_KINDS = (
    "impression",
    "like",
    "comment",
    "share",
    "save",
    "click",
    "video_start",
    "video_complete",
    "follow",
    "unfollow",
    "delivered",  # a newsletter or official-account push reached someone
    "open",
    "landing_visit",
    "form_submit",
    "conversion",
    "order",  # value: the order's revenue
    "refund",
    "spend",  # value: ad spend (same currency as revenue)
    "followers",  # value: the account's follower count at ts (a snapshot, not an increment)
    "nps_response",  # value: a Net Promoter Score answer, 0-10
    "csat_response",  # value: a customer-satisfaction answer, 1-5
    "content_cost",  # value: what producing the content item cost (with its campaign)
)
# Kinds whose events mean nothing without a value, and what the value is.
KINDS_NEEDING_VALUE = {
    "order": "the order's revenue",
    "spend": "the amount spent",
    "followers": "the follower count",
    "nps_response": "the score, a whole number from 0 to 10",
    "csat_response": "the score, a whole number from 1 to 5",
    "content_cost": "the content item's production cost",
}
# Survey kinds: the whole-number range of their scores.
SCORE_RANGES = {"nps_response": (0, 10), "csat_response": (1, 5)}

# Ids are whatever the source uses (post URLs, URNs, numbers as text): anything printable
# without spaces. The store passes them as whole arguments, so no character is special there.
_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,512}$")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# The largest amount, follower count or score an event may carry: far above any real order,
# ad budget or audience, and small enough that sums of millions of them stay exact to the cent
# and finite.
MAX_NUMBER = 1e12
# An event's count (likes, impressions, clicks it stands for) at most.
MAX_COUNT = 10**9


def is_event_id(value: str) -> bool:
    """Whether ``value`` can be an event id (``id``, ``conversation_id``, ``reply_to``)."""
    return _ID.fullmatch(value) is not None


# Checked by pydantic's Rust core (no Python call per field on the hot path); first_error says
# what the pattern means. Strings that are not valid Unicode (lone surrogates) pydantic refuses
# itself, for every str field.
EventId = Annotated[str, Field(pattern=_ID.pattern)]


class _Event(BaseModel):
    # Unknown extra fields are kept out of the model but do not fail the event: sources add
    # fields over time and that must not dead-letter their whole stream.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    id: EventId
    ts: AwareDatetime
    platform: str = Field(pattern=_NAME)
    brand: str = Field(pattern=_NAME)
    is_bot: bool = False  # the source flags the author (or user) as a bot

    @field_validator("platform", "brand", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Mention(_Event):
    """Someone wrote about a brand on a platform."""

    author: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=100_000)
    sentiment: Literal["positive", "negative", "neutral"] | float | None = None
    author_followers: int | None = Field(None, ge=0, le=MAX_NUMBER)
    url: str | None = Field(None, max_length=4096)
    lang: str | None = Field(None, max_length=35)  # BCP 47 tags are at most 35 characters
    needs_reply: bool = False
    from_brand: bool = False
    conversation_id: EventId | None = None
    reply_to: EventId | None = None

    @model_validator(mode="after")
    def _reply_target(self) -> Mention:
        if self.from_brand and not (self.reply_to or self.conversation_id):
            raise ValueError("from_brand: a brand reply needs reply_to or conversation_id")
        if self.from_brand and self.needs_reply:
            raise ValueError("needs_reply: a brand reply cannot itself need a reply")
        return self

    @property
    def thread(self) -> str:
        """The conversation a customer-care reply is matched on: for a brand reply the one it
        answers, for an inbound message its own."""
        if self.from_brand:
            return self.reply_to or self.conversation_id or self.id
        return self.conversation_id or self.id

    @field_validator("sentiment", mode="before")
    @classmethod
    def _sentiment(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("sentiment must be a label or a number, not true/false")
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in SENTIMENT_LABELS:
                raise ValueError(f"sentiment {value!r} is not one of {', '.join(SENTIMENT_LABELS)}")
        elif isinstance(value, int | float) and not -1 <= value <= 1:
            # Compared as it came: float() of a 5,000-digit integer would raise OverflowError.
            shown = f"{value:.3g}" if isinstance(value, float) or abs(value) > 1e6 else value
            raise ValueError(f"sentiment score {shown} is outside [-1, 1]")
        return value


class Interaction(_Event):
    """Someone acted on a brand's content (like, share, click, ...)."""

    kind: str
    content_id: str = Field(min_length=1, max_length=512)
    user_id: str = Field(min_length=1, max_length=200)
    campaign: str | None = Field(None, max_length=200)
    value: float | None = Field(
        None, ge=0, le=MAX_NUMBER, allow_inf_nan=False, validate_default=True
    )
    # How many of the kind this one event stands for (200 likes a platform reported at once);
    # a whole number, counted once by id like any event.
    count: int = Field(1, ge=1, le=MAX_COUNT, strict=True)

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in INTERACTION_KINDS:
            raise ValueError(f"kind {value!r} is not one of {', '.join(INTERACTION_KINDS)}")
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("count")
    @classmethod
    def _count_without_value(cls, count: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if count != 1 and (kind in KINDS_NEEDING_VALUE or info.data.get("value") is not None):
            raise ValueError(
                "is for events that stand for several likes, impressions or clicks; an event "
                f"with a value (kind {kind}) is one event: send one per order or response"
            )
        return count

    @field_validator("value")
    @classmethod
    def _value_where_needed(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")
        if value is None and kind in KINDS_NEEDING_VALUE:
            raise ValueError(f"required for kind {kind!r} ({KINDS_NEEDING_VALUE[kind]})")
        score_range = SCORE_RANGES.get(str(kind))
        if (
            value is not None
            and score_range
            and value not in range(score_range[0], score_range[1] + 1)
        ):
            raise ValueError(f"{value:g} is not {KINDS_NEEDING_VALUE[str(kind)]}")
        if value is not None and kind == "followers" and not float(value).is_integer():
            raise ValueError(f"{value:g} is not a whole number of followers")
        return value


# Snapshot metric -> the catalog counter its increments add to. ``reach`` is the platform's
# own count of unique accounts reached: reported_reach, not the distinct count of user ids.
SNAPSHOT_METRICS = {
    "impressions": "impressions",
    "reach": "reported_reach",
    "video_views": "video_views",
    "likes": "likes",
    "comments": "comments",
    "shares": "shares",
    "saves": "saves",
    "clicks": "clicks",
    "profile_visits": "profile_visits",
    "video_starts": "video_starts",
    "video_completes": "video_completes",
    "follows": "follows",
    "landing_visits": "landing_visits",
    "conversions": "conversions",
    "orders": "orders",
    "revenue": "revenue",
    "spend": "spend",
}
# Money totals: any finite amount (cents and beyond); every other metric is a whole number.
SNAPSHOT_AMOUNTS = frozenset({"spend", "revenue"})
_NUMERIC = re.compile(r"[0-9]{1,20}(\.[0-9]{1,12})?")
# How far a publication time may be after the snapshot's time (two clocks) and still count.
PUBLISHED_SKEW = timedelta(minutes=5)


class MetricSnapshot(_Event):
    """The running totals of one object (post, video, ad, account) at a time, as polled."""

    id: EventId = ""  # default <object_id>@<ts> (set before validation)
    object_id: str = Field(min_length=1, max_length=512)
    object_type: str = Field("post", pattern=_NAME)
    published_at: AwareDatetime | None = None
    campaign: str | None = Field(None, max_length=200)
    metrics: dict[str, int | float] = Field(min_length=1, max_length=len(SNAPSHOT_METRICS))

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("id") in (None, "") and "object_id" in data:
            data = {**data, "id": f"{data['object_id']}@{data.get('ts')}".replace(" ", "_")}
        return data

    @field_validator("metrics", mode="before")
    @classmethod
    def _known_metrics(cls, value: object) -> object:
        # Platforms add metrics over time (views, bookmarks, total_interactions): names not in
        # SNAPSHOT_METRICS are left out, as unknown fields are, so a poller's new field does
        # not dead-letter the totals that count; a snapshot with none of ours is refused.
        # Totals as numeric text ("182044", "41.20": YouTube, the Marketing API) are numbers.
        if not isinstance(value, dict):
            return value
        known: dict[str, int | float] = {}
        for name, number in value.items():
            if name not in SNAPSHOT_METRICS:
                continue
            if isinstance(number, str) and _NUMERIC.fullmatch(number.strip()):
                text = number.strip()
                number = float(text) if "." in text else int(text)
            if isinstance(number, bool) or not isinstance(number, int | float):
                kind = f"text {number[:40]!r}" if isinstance(number, str) else type(number).__name__
                raise ValueError(f"{name}: a number, not {kind}")
            # Compared as it came: float() of a 5,000-digit integer would raise OverflowError.
            if not (0 <= number <= MAX_NUMBER) or number != number:
                shown = f"{number:.3g}" if isinstance(number, float) or number > 1e6 else number
                raise ValueError(f"{name}: {shown} is outside 0 to 1e12")
            if name not in SNAPSHOT_AMOUNTS and not float(number).is_integer():
                raise ValueError(f"{name}: {number:g} is not a whole number")
            known[name] = number
        if value and not known:
            names = ", ".join(repr(str(n))[:42] for n in list(value)[:5])
            raise ValueError(
                f"none of {names} is a snapshot metric ({', '.join(SNAPSHOT_METRICS)})"
            )
        return known

    @model_validator(mode="after")
    def _published_before(self) -> MetricSnapshot:
        # A few minutes' skew between the platform's clock and the poller's is no error: the
        # object then counts from ts. Further ahead is a wrong field.
        if self.published_at is not None and self.published_at > self.ts + PUBLISHED_SKEW:
            raise ValueError(
                f"published_at: {self.published_at.isoformat()} is after ts {self.ts.isoformat()}"
            )
        return self


E = TypeVar("E", bound=_Event)
ID_FIELDS = ("id", "conversation_id", "reply_to")
