"""The decoder: Kafka message bytes (one event, or an envelope of them) into events of the
schemas in streams.events, or the reason each one cannot be (never raising on bad input).

Within an envelope, each event stands alone: one bad event is dead-lettered, the others count.
Strings that are not valid Unicode and numbers that are not finite or past the bound are
refused naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import (
    TypeAdapter,
    ValidationError,
)

from streams.events import (
    ID_FIELDS,
    MAX_ENVELOPE_BYTES,
    MAX_ENVELOPE_EVENTS,
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    E,
    _Event,
)

_NAMED = re.compile(r"^[a-z_]+: ")
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
    if not first["loc"] and _NAMED.match(message):
        # A check across fields names its field itself ("published_at: ... is after ts").
        return "invalid_fields", f"{message}{more}"
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
