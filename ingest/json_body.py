"""Reading the JSON that clients send (request bodies, webhook payloads, file lines) with orjson
(pure, no I/O).

orjson refuses what the standard library lets through and Kafka consumers cannot read: ``NaN``
and ``Infinity`` literals, numbers beyond a double (a 5,000-digit number), lone surrogates
(``"\\ud800"``), invalid UTF-8, nesting deeper than 1,024 levels. Each becomes a
:class:`Rejected` ``not_json`` (``not_utf8`` for bytes that are not UTF-8) whose detail says
what is wrong and at which byte of the body.

One bad item must not cost the others. orjson refuses a whole array when one of its items is
bad, so a body that fails as a whole is split into its top-level items by its framing alone
(strings, brackets, commas: :func:`split_array`) and each item is parsed on its own; NDJSON is
parsed line by line. Only a body whose framing is itself broken (unbalanced brackets, an
unterminated string, an empty item) is refused whole.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ingest.validation import Rejected

# A JSON string (escapes included, any bytes inside) or one structural byte. A quote that does
# not start a terminated string matches alone and marks the framing broken.
_FRAMING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},"]', re.DOTALL)
_OPENS = {ord("["): ord("]"), ord("{"): ord("}")}
_WHITESPACE = b" \t\r\n"
MAX_DEPTH = 1024  # orjson's nesting limit


class TooManyItems(Exception):
    """More than ``limit`` items, found before parsing them one by one (and before counting
    them all: the reading stops there)."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} items")
        self.limit = limit


def explain(error: orjson.JSONDecodeError, data: bytes | str, offset: int = 0) -> Rejected:
    """Why ``data`` (which starts at byte ``offset`` of the body) is not JSON, for people."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected("not_utf8", f"not UTF-8: {exc.reason} at byte {offset + exc.start}")
    text = error.doc if isinstance(error.doc, str) else raw.decode("utf-8")
    at = offset + len(text[: error.pos].encode("utf-8", "surrogatepass"))
    message, rest = error.msg, text[error.pos : error.pos + 8]
    if rest.startswith(("NaN", "Infinity")) or text[max(error.pos - 1, 0) :].startswith(
        "-Infinity"
    ):
        hint = "; NaN and Infinity are not JSON numbers: send null or leave the field out"
    elif "infinity when parsed as double" in message:
        hint = "; the number is too large (beyond about 1.8e308)"
    elif "surrogate" in message:
        hint = "; half of a \\u surrogate pair alone is not Unicode text"
    elif "depth limit" in message:
        hint = f"; nested deeper than {MAX_DEPTH:,} levels"
    else:
        hint = ""
    return Rejected("not_json", f"not JSON: {message} at byte {at}{hint}")


def parse_value(data: bytes | str, offset: int = 0) -> Any | Rejected:
    """One JSON value, or a Rejected saying why ``data`` is not one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return explain(exc, data, offset)


def split_array(body: bytes, max_items: int | None = None) -> list[tuple[int, bytes]] | None:
    """The top-level items of a JSON array, each as (byte offset, bytes), read from the
    framing only (the items themselves are not parsed); None when the framing is broken;
    TooManyItems as soon as there are more than ``max_items``."""
    start = len(body) - len(body.lstrip(_WHITESPACE))
    end = len(body.rstrip(_WHITESPACE))
    if end - start < 2 or body[start] != ord("[") or body[end - 1] != ord("]"):
        return None
    items: list[tuple[int, bytes]] = []
    closers: list[int] = []
    item_start = start + 1
    for match in _FRAMING.finditer(body, start, end):
        byte, at = body[match.start()], match.start()
        if byte == ord('"'):
            if match.end() - at == 1:
                return None  # a quote that opens no terminated string
            continue
        if byte in _OPENS:
            closers.append(_OPENS[byte])
        elif byte == ord(","):
            if len(closers) == 1:
                if not _item(body, item_start, at, items):
                    return None
                if max_items is not None and len(items) >= max_items:
                    raise TooManyItems(max_items)  # a comma after the last one allowed
                item_start = at + 1
        elif not closers or closers.pop() != byte:
            return None  # a closing bracket that closes nothing, or the wrong kind
        elif not closers:
            if at != end - 1:
                return None  # something after the array
            if (items or body[item_start:at].strip(_WHITESPACE)) and not _item(
                body, item_start, at, items
            ):
                return None
    return items if not closers else None


def _item(body: bytes, start: int, end: int, items: list[tuple[int, bytes]]) -> bool:
    text = body[start:end]
    stripped = text.lstrip(_WHITESPACE)
    if not stripped.strip(_WHITESPACE):
        return False  # an empty item: [1,,2] or [1,]
    items.append((start + len(text) - len(stripped), stripped.rstrip(_WHITESPACE)))
    return True


def parse_lines(body: bytes | str, max_items: int | None = None) -> list[Any]:
    """Items of newline-delimited JSON, each line on its own: a line that is not JSON is a
    Rejected in its place; blank lines are skipped (they are not items). TooManyItems beyond
    ``max_items`` lines, before any is parsed."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    lines: list[tuple[int, bytes]] = []
    offset = 0
    for line in raw.splitlines(keepends=True):
        at, offset = offset, offset + len(line)
        if line.strip(_WHITESPACE):
            lines.append((at, line))
    if max_items is not None and len(lines) > max_items:
        raise TooManyItems(max_items)
    return [parse_value(line, at) for at, line in lines]


def parse_items(
    body: bytes, content_type: str, max_items: int | None = None
) -> list[Any] | Rejected:
    """The items of a request body: one JSON object, a JSON array, or NDJSON (by content type,
    or when the body is not one JSON value but has several lines). Items that are not JSON are
    Rejected in their place; a Rejected instead of the list refuses the whole body (its detail
    reads after "the body is"). TooManyItems when a body read item by item holds more than
    ``max_items``, before they are parsed (a valid array is counted by the caller)."""
    if not body.strip(_WHITESPACE):
        return Rejected("not_json", "empty: send an event object, an array of events or NDJSON")
    if "ndjson" in content_type or "jsonl" in content_type:
        return parse_lines(body, max_items)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        pieces = split_array(body, max_items)
        if pieces is not None:
            return [parse_value(piece, at) for at, piece in pieces]
        if body.strip(_WHITESPACE).count(b"\n"):
            return parse_lines(body, max_items)
        return explain(exc, body)
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        return [payload]
    return Rejected("not_json", "neither an event object nor an array of events")


__all__ = [
    "TooManyItems",
    "explain",
    "parse_items",
    "parse_lines",
    "parse_value",
    "split_array",
]
