"""Check incoming items against the event schemas before they reach Kafka (pure, no I/O).

The gateway, webhooks and file ingest refuse here what the worker would dead-letter, so the
sender learns at once, per item, what is wrong; the worker still checks everything again.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from socialpulse.core.config import TopicSettings
from streams.batch import unknown_brand_or_platform
from streams.decoding import first_error
from streams.events import MAX_EVENT_BYTES, Interaction, Mention, MetricSnapshot

EventType = Literal["mention", "interaction", "snapshot"]
# Fields that hold event ids: an event's own and the conversation it belongs to or answers.
REFERENCES = ("id", "conversation_id", "reply_to")
MAX_DETAIL = 300  # characters of a per-item detail: it may quote what the client sent
# orjson writes integers of 64 bits at most and nests at most this deep.
INT_RANGE = (-(2**63), 2**64 - 1)
MAX_WRITE_DEPTH = 254
MODELS: dict[EventType, type[Mention] | type[Interaction] | type[MetricSnapshot]] = {
    "mention": Mention,
    "interaction": Interaction,
    "snapshot": MetricSnapshot,
}


def event_topics(topics: TopicSettings) -> dict[EventType, str]:
    """The Kafka topic each event type is written to."""
    return {
        "mention": topics.mentions,
        "interaction": topics.interactions,
        "snapshot": topics.snapshots,
    }


@dataclass(frozen=True)
class Accepted:
    """A valid event, ready to produce: its type and its JSON (as sent, minus ``type``)."""

    type: EventType
    brand: str
    id: str
    ts: float  # event time, epoch seconds
    body: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """An item that cannot become an event: a machine reason and a detail for people."""

    reason: str
    detail: str


def event_type(item: Mapping[str, Any], default: EventType | None = None) -> EventType | Rejected:
    """Which schema an item follows: its ``type`` field, else ``default``, else inferred (an
    item with ``kind`` is an interaction, one with ``object_id`` and ``metrics`` a snapshot,
    one with ``author`` or ``text`` a mention)."""
    declared = item.get("type", default)
    if declared is not None:
        if isinstance(declared, str) and declared in MODELS:
            return declared
        return Rejected(
            "invalid_fields", f"type: {shown(declared)} is not mention, interaction or snapshot"
        )
    if "kind" in item:
        return "interaction"
    if "object_id" in item and "metrics" in item:
        return "snapshot"
    if "author" in item or "text" in item:
        return "mention"
    return Rejected(
        "invalid_fields",
        "type: cannot tell a mention from an interaction or a snapshot; set type, or give kind "
        "(interaction), object_id and metrics (snapshot) or author and text (mention)",
    )


def validate_item(
    item: Any,
    now: float,
    max_future: float,
    known: Mapping[str, Collection[str]] | None = None,
    default_type: EventType | None = None,
) -> Accepted | Rejected:
    """One decoded JSON item as an event, or why not: schema, event time at most ``max_future``
    seconds ahead of ``now``, and with ``known`` (strict mode) a listed brand and platform."""
    if not isinstance(item, dict):
        return Rejected("invalid_fields", f"an event is a JSON object, not {json_kind(item)}")
    kind = event_type(item, default_type)
    if isinstance(kind, Rejected):
        return kind
    body = {k: v for k, v in item.items() if k != "type"}
    try:
        encoded = orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        return Rejected("invalid_fields", unrepresentable(body) or f"not JSON: {exc}")
    # orjson writes NaN and Infinity as null, so only a body with a null can hide one (they
    # come from mappings and files, never from orjson-parsed bodies).
    if b"null" in encoded and (problem := unrepresentable(body)):
        return Rejected("invalid_fields", problem)
    size = len(encoded)
    if size > MAX_EVENT_BYTES:
        return Rejected("oversize", f"{size} bytes is over the {MAX_EVENT_BYTES} limit")
    try:
        event = MODELS[kind].model_validate(body)
    except ValidationError as exc:
        reason, detail = first_error(exc)
        return Rejected(reason, capped(detail))
    if known is not None:
        unknown = unknown_brand_or_platform(event, known)
        if unknown:
            return Rejected(unknown.reason, unknown.detail)
    ts = event.ts.timestamp()
    if ts > now + max_future:
        return Rejected(
            "ts_in_future",
            f"ts: {event.ts.isoformat()} is more than {max_future:g} s ahead of now "
            f"({datetime.fromtimestamp(now, UTC).isoformat(timespec='seconds')})",
        )
    return Accepted(kind, event.brand, event.id, ts, body)


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in words: an object, an array, a string, ..."""
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    if isinstance(value, bool):
        return "true/false"
    return names.get(type(value), "a number")


def shown(value: Any, width: int = 60) -> str:
    """A client's value quoted in a detail: strings and numbers shortened, containers named
    (their repr could be huge or nested past the recursion limit)."""
    if isinstance(value, str):
        return repr(value[:width]) + ("..." if len(value) > width else "")
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if abs(value) >= 10**18:  # str() of a 5,000-digit int raises; its size says enough
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return json_kind(value)


def capped(detail: str, limit: int = MAX_DETAIL) -> str:
    """A detail no longer than ``limit`` characters (it may quote what the client sent)."""
    return detail if len(detail) <= limit else detail[: limit - 3] + "..."


def unrepresentable(body: Any) -> str | None:
    """The first value of ``body`` that JSON as written to Kafka cannot carry, as
    ``path: problem``: NaN or Infinity, an integer beyond 64 bits, a string that is not
    Unicode (a lone surrogate), nesting deeper than :data:`MAX_WRITE_DEPTH`; None if none."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), body)]
    while stack:
        path, value = stack.pop()
        where = ".".join(path) or "(event)"
        if len(path) > MAX_WRITE_DEPTH:
            return f"{path[0]}: nested deeper than {MAX_WRITE_DEPTH} levels"
        if isinstance(value, float):
            if not math.isfinite(value):
                return (
                    f"{where}: {value} is not a JSON number (NaN and Infinity are not JSON): "
                    "send null or leave the field out"
                )
        elif isinstance(value, int) and not isinstance(value, bool):
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                return f"{where}: {shown(value)} is beyond the 64-bit integers JSON carries here"
        elif isinstance(value, str):
            if (problem := _not_unicode(value)) is not None:
                return f"{where}: {problem}"
        elif isinstance(value, dict):
            for key in value:
                if (problem := _not_unicode(str(key))) is not None:
                    return f"{where}: a field name is {problem}"
            stack.extend(((*path, str(k)), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, str(n)), v) for n, v in reversed(list(enumerate(value))))
    return None


def _not_unicode(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not Unicode text ({exc.reason} at character {exc.start})"
    return None
