"""Event schemas (schema version 1) and the decoder that turns Kafka message bytes into events.

Both topics carry UTF-8 JSON, keyed by brand id: one event object per message, or an
envelope, a JSON array of up to :data:`MAX_ENVELOPE_EVENTS` events of one brand, for producers
that batch (the simulator, file ingest). Envelopes cut the per-message cost of Kafka and Faust;
each event in one is validated, counted or dead-lettered on its own.

Mention (topic ``social.mentions``): someone wrote about a brand.

============== ======== ===========================================================
field          required meaning
============== ======== ===========================================================
schema_version no       1 (the only version so far; others are refused)
id             yes      unique event id from the source; redeliveries reuse it
ts             yes      event time, ISO 8601 with a timezone (``2026-11-22T09:30:00Z``)
platform       yes      x, instagram, facebook, linkedin, tiktok, youtube, weibo, ...
brand          yes      brand id from config/brands.yaml
author         yes      author handle or id on that platform
text           yes      the mention's text (may be empty for media-only posts)
sentiment      no       upstream sentiment: a label (positive/negative/neutral) or a
                        score in [-1, 1]; when absent, SocialPulse scores the text
author_followers no     follower count of the author (for potential reach)
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
value          for some >= 0: required for ``order`` (revenue), ``spend`` (amount),
                        ``followers`` (the follower count then), ``nps_response`` (0-10)
                        and ``csat_response`` (1-5)
============== ======== ===========================================================
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
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
)
# Kinds whose events mean nothing without a value, and what the value is.
KINDS_NEEDING_VALUE = {
    "order": "the order's revenue",
    "spend": "the amount spent",
    "followers": "the follower count",
    "nps_response": "the score, a whole number from 0 to 10",
    "csat_response": "the score, a whole number from 1 to 5",
}
# Survey kinds: the whole-number range of their scores.
SCORE_RANGES = {"nps_response": (0, 10), "csat_response": (1, 5)}

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Event(BaseModel):
    # Unknown extra fields are kept out of the model but do not fail the event: sources add
    # fields over time and that must not dead-letter their whole stream.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    id: str = Field(pattern=_ID)
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
    author_followers: int | None = Field(None, ge=0)
    url: str | None = None
    lang: str | None = None
    needs_reply: bool = False
    from_brand: bool = False
    conversation_id: str | None = Field(None, pattern=_ID)
    reply_to: str | None = Field(None, pattern=_ID)

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
        elif isinstance(value, int | float) and not -1.0 <= float(value) <= 1.0:
            raise ValueError(f"sentiment score {value} is outside [-1, 1]")
        return value


class Interaction(_Event):
    """Someone acted on a brand's content (like, share, click, ...)."""

    kind: str
    content_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)
    campaign: str | None = Field(None, max_length=200)
    value: float | None = Field(None, ge=0, allow_inf_nan=False, validate_default=True)

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in INTERACTION_KINDS:
            raise ValueError(f"kind {value!r} is not one of {', '.join(INTERACTION_KINDS)}")
        return value.strip().lower() if isinstance(value, str) else value

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


E = TypeVar("E", bound=_Event)


# Why a message was dead-lettered (the ``reason`` header and metric label).
INVALID_REASONS = (
    "not_utf8",
    "not_json",
    "oversize",
    "unknown_schema_version",
    "invalid_fields",
    "ts_in_future",  # streams.batch: the event time is too far ahead
    "unknown_brand",  # streams.batch, with cleaning.strict: a brand brands.yaml does not list
    "unknown_platform",  # ... or a platform its brand does not list
)


@dataclass(frozen=True)
class InvalidEvent:
    """A message that could not be decoded: a short machine reason and a human detail."""

    reason: str  # one of INVALID_REASONS
    detail: str


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The dead-letter reason and a one-line detail (field: problem) of a validation error."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "(message)"
    if first["type"] == "json_invalid":
        return "not_json", f"not JSON: {first['msg']}"
    if first["type"] == "model_type":
        return "not_json", "not a JSON object"
    if field == "schema_version":
        return "unknown_schema_version", f"schema_version must be {SCHEMA_VERSION}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return "invalid_fields", f"{field}: {message}{more}"


def decode(raw: bytes | None, model: type[E]) -> E | InvalidEvent:
    """Decode one message's bytes into ``model`` or say why not; never raises on bad input."""
    if raw is None:
        return InvalidEvent("not_json", "empty message (tombstone)")
    if len(raw) > MAX_EVENT_BYTES:
        return InvalidEvent("oversize", f"{len(raw)} bytes is over the {MAX_EVENT_BYTES} limit")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InvalidEvent("not_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        reason, detail = first_error(exc)
        return InvalidEvent(reason, detail)


@dataclass(frozen=True)
class Decoded:
    """One event of a message: the event or why it is invalid, and its own bytes (for an event
    from an envelope, re-serialised, so that a dead letter holds just that event)."""

    event: _Event | InvalidEvent
    raw: bytes | None
    index: int | None = None  # position in the envelope; None for a one-event message

    def item_bytes(self) -> bytes | None:
        """This event's own bytes (an envelope's valid events are re-serialised on demand)."""
        if self.raw is None and isinstance(self.event, _Event):
            return self.event.model_dump_json(exclude_unset=True).encode()
        return self.raw


@cache
def _list_adapter(model: type[E]) -> TypeAdapter[list[E]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def decode_message(raw: bytes | None, model: type[E]) -> Sequence[Decoded]:
    """Decode a message holding one event or an envelope (JSON array) of events; never raises
    on bad input. An envelope that is not valid JSON as a whole is one invalid event."""
    if raw is None or raw.lstrip()[:1] != b"[":
        return [Decoded(decode(raw, model), raw)]
    if len(raw) > MAX_ENVELOPE_BYTES:
        return [
            Decoded(
                InvalidEvent(
                    "oversize", f"envelope of {len(raw)} bytes is over {MAX_ENVELOPE_BYTES}"
                ),
                raw,
            )
        ]
    try:
        # Fast path: the whole envelope validated in one call (pydantic's Rust core).
        events = _list_adapter(model).validate_json(raw)
    except ValidationError:
        pass
    else:
        if not events or len(events) > MAX_ENVELOPE_EVENTS:
            return [_bad_size(raw, len(events))]
        return [Decoded(event, None, i) for i, event in enumerate(events)]
    try:
        items = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Not JSON as a whole: let the one-event decoder name the problem.
        return [Decoded(decode(raw, model), raw)]
    except RecursionError:
        # Arrays nested thousands deep: hostile or broken, and no event is that deep.
        return [Decoded(InvalidEvent("not_json", "JSON nested too deeply"), raw)]
    if not items or len(items) > MAX_ENVELOPE_EVENTS:
        return [_bad_size(raw, len(items))]
    return [_decode_item(item, model, i) for i, item in enumerate(items)]


def _bad_size(raw: bytes, count: int) -> Decoded:
    if not count:
        return Decoded(
            InvalidEvent("invalid_fields", "empty envelope: no events in the array"), raw
        )
    return Decoded(
        InvalidEvent("oversize", f"envelope of {count} events is over {MAX_ENVELOPE_EVENTS}"),
        raw,
    )


def _decode_item(item: Any, model: type[E], index: int) -> Decoded:
    raw = json.dumps(item, ensure_ascii=False).encode()
    try:
        return Decoded(model.model_validate(item), raw, index)
    except ValidationError as exc:
        return Decoded(InvalidEvent(*first_error(exc)), raw, index)
