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

Numbers are finite and bounded (:data:`MAX_NUMBER`): NaN, infinities and values beyond the
bound are refused as ``invalid_fields`` naming the field, so no sum can become infinite.
Strings are valid Unicode: a lone surrogate escape (``"\\ud800"``) is refused the same way.
Within an envelope, each event stands alone: one such event is dead-lettered, the others count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

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

# Ids are whatever the source uses (post URLs, URNs, numbers as text): anything printable
# without spaces. The store passes them as whole arguments, so no character is special there.
_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,512}$")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# The largest amount, follower count or score an event may carry: far above any real order,
# ad budget or audience, and small enough that sums of millions of them stay exact to the cent
# and finite.
MAX_NUMBER = 1e12


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
ID_FIELDS = ("id", "conversation_id", "reply_to")


# Why a message was dead-lettered (the ``reason`` header and metric label).
INVALID_REASONS = (
    "not_utf8",
    "not_json",
    "oversize",
    "unknown_schema_version",
    "invalid_fields",
    "ts_in_future",  # streams.batch: the event time is too far ahead
    "processing_error",  # streams.batch or the store: processing it raised (type: message)
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
    elif first["type"] == "string_unicode":
        message = "not valid Unicode (an unpaired surrogate escape such as \\ud800)"
    elif first["type"] == "string_pattern_mismatch" and field in ID_FIELDS:
        shown = first["input"] if len(first["input"]) <= 40 else first["input"][:37] + "..."
        message = (
            f"{shown!r} is not an id: use 1 to 512 characters without spaces or control characters"
        )
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
    if reason == "not_json":
        # pydantic's parser refuses some JSON that is only wrong in one field (a lone surrogate
        # escape in a string); the standard parser reads it, so the field can be named.
        item = _loads(raw)
        if not isinstance(item, _Unparsed) and isinstance(item, dict):
            decoded = _decode_item(item, model, None, raw)
            if isinstance(decoded.event, InvalidEvent):
                return decoded.event
    return InvalidEvent(reason, detail)


class _Unparsed:
    """Why the standard parser could not read some JSON either."""

    def __init__(self, detail: str):
        self.detail = detail


def _number(text: str) -> float | int:
    # Integers that Python would refuse to convert (over 4,300 digits) or that no field takes
    # become floats, which the models' bounds refuse by field; an overflow becomes inf.
    return int(text) if len(text) <= 20 else float(text)


# The standard parser, reading what pydantic's refuses: lone surrogates, huge integers, NaN.
_DECODER = json.JSONDecoder(parse_int=_number)


def _loads(raw: bytes) -> Any:
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        return _Unparsed(f"not JSON: {exc}")
    except RecursionError:
        # Arrays nested thousands deep: hostile or broken, and no event is that deep.
        return _Unparsed("JSON nested too deeply")


@dataclass(frozen=True)
class Decoded:
    """One event of a message: the event or why it is invalid, and its own bytes (for an event
    from an envelope, its own slice of the envelope, so that a dead letter holds just it)."""

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
    items = split_envelope(raw)
    if isinstance(items, _Unparsed):
        if items.detail == "JSON nested too deeply":
            return [Decoded(InvalidEvent("not_json", items.detail), raw)]
        # Not JSON as a whole: let the one-event decoder name the problem.
        return [Decoded(decode(raw, model), raw)]
    if not items or len(items) > MAX_ENVELOPE_EVENTS:
        return [_bad_size(raw, len(items))]
    return [_decode_item(item, model, i, own) for i, (item, own) in enumerate(items)]


def split_envelope(raw: bytes) -> list[tuple[Any, bytes]] | _Unparsed:
    """An envelope's items, each with its own bytes as sent (for its dead letter), read by the
    standard parser: lone surrogates, huge numbers and NaN stay inside the item they are in."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Unparsed(f"not JSON: not UTF-8 at byte {exc.start}")
    whitespace = " \t\n\r"
    at = len(text) - len(text.lstrip(whitespace)) + 1  # past the "["
    items: list[tuple[Any, bytes]] = []
    try:
        while True:
            while at < len(text) and text[at] in whitespace:
                at += 1
            if at < len(text) and text[at] == "]" and not items:
                at += 1
                break
            item, end = _DECODER.raw_decode(text, at)
            items.append((item, text[at:end].encode()))
            at = end
            while at < len(text) and text[at] in whitespace:
                at += 1
            if at < len(text) and text[at] == ",":
                at += 1
                continue
            if at < len(text) and text[at] == "]":
                at += 1
                break
            return _Unparsed(f"not JSON: expected ',' or ']' at character {at}")
    except ValueError as exc:
        return _Unparsed(f"not JSON: {exc}")
    except RecursionError:
        return _Unparsed("JSON nested too deeply")
    if text[at:].strip(whitespace):
        return _Unparsed(f"not JSON: extra data at character {at}")
    return items


def _bad_size(raw: bytes, count: int) -> Decoded:
    if not count:
        return Decoded(
            InvalidEvent("invalid_fields", "empty envelope: no events in the array"), raw
        )
    return Decoded(
        InvalidEvent("oversize", f"envelope of {count} events is over {MAX_ENVELOPE_EVENTS}"),
        raw,
    )


def _decode_item(item: Any, model: type[E], index: int | None, raw: bytes) -> Decoded:
    try:
        return Decoded(model.model_validate(item), raw, index)
    except ValidationError as exc:
        return Decoded(InvalidEvent(*first_error(exc)), raw, index)
