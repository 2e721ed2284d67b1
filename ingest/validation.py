"""Check incoming items against the event schemas before they reach Kafka (pure, no I/O).

The gateway, webhooks and file ingest refuse here what the worker would dead-letter, so the
sender learns at once, per item, what is wrong; the worker still checks everything again.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from streams.batch import unknown_brand_or_platform
from streams.events import MAX_EVENT_BYTES, Interaction, Mention, first_error

EventType = Literal["mention", "interaction"]
# Fields that hold event ids: an event's own and the conversation it belongs to or answers.
REFERENCES = ("id", "conversation_id", "reply_to")
MODELS: dict[EventType, type[Mention] | type[Interaction]] = {
    "mention": Mention,
    "interaction": Interaction,
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

    def as_dict(self, index: int) -> dict[str, Any]:
        """The per-item error of a response or rejects file."""
        return {"index": index, "reason": self.reason, "detail": self.detail}


def event_type(item: Mapping[str, Any], default: EventType | None = None) -> EventType | Rejected:
    """Which schema an item follows: its ``type`` field, else ``default``, else inferred (an
    item with ``kind`` is an interaction, one with ``author`` or ``text`` a mention)."""
    declared = item.get("type", default)
    if declared is not None:
        if declared in MODELS:
            return declared
        return Rejected("invalid_fields", f"type: {declared!r} is not mention or interaction")
    if "kind" in item:
        return "interaction"
    if "author" in item or "text" in item:
        return "mention"
    return Rejected(
        "invalid_fields",
        "type: cannot tell a mention from an interaction; set type, or give kind "
        "(interaction) or author and text (mention)",
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
        return Rejected("invalid_fields", f"an event is a JSON object, not {_json_kind(item)}")
    kind = event_type(item, default_type)
    if isinstance(kind, Rejected):
        return kind
    body = {k: v for k, v in item.items() if k != "type"}
    try:
        size = len(json.dumps(body, ensure_ascii=False).encode())
    except ValueError as exc:  # NaN and Infinity are not JSON
        return Rejected("invalid_fields", f"not representable as JSON: {exc}")
    if size > MAX_EVENT_BYTES:
        return Rejected("oversize", f"{size} bytes is over the {MAX_EVENT_BYTES} limit")
    try:
        event = MODELS[kind].model_validate(body)
    except ValidationError as exc:
        return Rejected(*first_error(exc))
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


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def parse_ndjson(text: str) -> Iterator[Any | Rejected]:
    """Items of newline-delimited JSON; a line that is not JSON is a Rejected in its place.
    Blank lines are skipped (they are not items)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield Rejected("not_json", f"not JSON: {exc}")
