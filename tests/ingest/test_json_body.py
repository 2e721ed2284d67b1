"""Reading client JSON with orjson: the whole-body reasons, the split of an array by its framing
alone, NDJSON line by line, and what validation refuses that orjson's writer would change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.json_body import parse_items, parse_lines, split_array
from ingest.validation import Rejected, validate_item

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
MENTION = {
    "id": "m-1",
    "ts": "2026-11-30T11:59:00Z",
    "platform": "x",
    "brand": "acme",
    "author": "jo",
    "text": "love it",
}


@pytest.mark.parametrize(
    ("body", "items"),
    [
        (b"[1,2]", [(1, b"1"), (3, b"2")]),
        (b' [ {"a": [1, 2]} , {"b": "x,]"} ] ', [(3, b'{"a": [1, 2]}'), (19, b'{"b": "x,]"}')]),
        (b'["\\"]", NaN]', [(1, b'"\\"]"'), (8, b"NaN")]),  # an escaped quote stays inside
        (b'["\xff", 1]', [(1, b'"\xff"'), (6, b"1")]),  # bytes inside strings are not read
        (b"[]", []),
    ],
)
def test_an_array_splits_into_its_items_by_framing_alone(
    body: bytes, items: list[tuple[int, bytes]]
) -> None:
    assert split_array(body) == items


@pytest.mark.parametrize(
    "body",
    [b"[1,,2]", b"[1,]", b"[,1]", b"[1", b'["abc]', b"[1]x", b"[{]}", b"[1]]", b"{}", b"1", b""],
)
def test_broken_framing_does_not_split(body: bytes) -> None:
    assert split_array(body) is None


def test_ndjson_is_read_line_by_line_blank_lines_skipped() -> None:
    items = parse_lines(b'{"a": 1}\r\n\n{"b": NaN}\n[2]\n\xff\n')
    assert items == [
        {"a": 1},
        Rejected(
            "not_json",
            "not JSON: unexpected character, expected a JSON value at byte 17; NaN and "
            "Infinity are not JSON numbers: send null or leave the field out",
        ),
        [2],
        Rejected("not_utf8", "not UTF-8: invalid start byte at byte 26"),
    ]


def test_an_array_with_one_bad_item_keeps_the_others_and_a_lone_object_is_one_item() -> None:
    assert parse_items(b'[{"a": 1}, {"b": 1e999}, 3]', "application/json") == [
        {"a": 1},
        Rejected(
            "not_json",
            "not JSON: number is infinity when parsed as double at byte 17; the number is too "
            "large (beyond about 1.8e308)",
        ),
        3,
    ]
    assert parse_items(b'{"a": 1}', "application/json") == [{"a": 1}]
    # Not one JSON value but several lines: NDJSON, whatever the content type said.
    assert parse_items(b'{"a": 1}\n{"b": 2}', "application/json") == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        (
            {"extra": float("nan")},
            "extra: nan is not a JSON number (NaN and Infinity are not JSON): send null or leave "
            "the field out",
        ),
        (
            {"extra": {"deeper": [1, float("-inf")]}},
            "extra.deeper.1: -inf is not a JSON number (NaN and Infinity are not JSON): send null "
            "or leave the field out",
        ),
        (
            {"author_followers": 10**30},
            "author_followers: an integer of about 31 digits is beyond the 64-bit integers JSON "
            "carries here",
        ),
        ({"extra": 10**5000}, "extra: an integer of about 5001 digits is beyond the 64-bit"),
        ({"text": "a\ud800"}, "text: not Unicode text (surrogates not allowed at character 1)"),
        ({"extra": {"k\udc00": 1}}, "extra: a field name is not Unicode text (surrogates not"),
    ],
)
def test_what_json_cannot_carry_exactly_is_refused_naming_the_field(
    fields: dict[str, Any], detail: str
) -> None:
    # Items that do not come through orjson (mappings, files read by other means) may hold
    # these; orjson would write NaN as null and refuse the rest.
    result = validate_item(MENTION | fields, NOW, 300)
    assert isinstance(result, Rejected)
    assert (result.reason, result.detail[: len(detail)]) == ("invalid_fields", detail)
