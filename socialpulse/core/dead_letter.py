"""The dead-letter record: what the worker writes for a message it cannot count, and how the
record is known again (``socialpulse dlq`` reads it with the same names).

Value and key are the original bytes (for one event of an envelope, that event's own bytes).
Headers: ``reason``, ``detail``, ``source_topic``, ``source_partition``, ``source_offset``,
``dead_lettered_at`` and, for an event of an envelope, ``envelope_index``. A dead letter is
known by its source position (topic, partition, offset, index): a worker that crashes after
writing one and before committing writes it again, and readers show it once.
"""

from __future__ import annotations

from collections.abc import Mapping

REASON, DETAIL = "reason", "detail"
SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET = "source_topic", "source_partition", "source_offset"
ENVELOPE_INDEX, DEAD_LETTERED_AT = "envelope_index", "dead_lettered_at"

SourcePosition = tuple[str, int | None, int | None, int | None]


def dead_letter_headers(
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    index: int | None,
    at: float,
) -> dict[str, bytes]:
    """The headers of a dead letter for the message (or envelope event ``index``) at
    ``topic[partition]@offset``, dead-lettered at unix time ``at``."""
    headers = {
        REASON: reason.encode(),
        DETAIL: detail.encode("utf-8", "replace"),
        SOURCE_TOPIC: topic.encode(),
        SOURCE_PARTITION: str(partition).encode(),
        SOURCE_OFFSET: str(offset).encode(),
        DEAD_LETTERED_AT: repr(at).encode(),
    }
    if index is not None:
        headers[ENVELOPE_INDEX] = str(index).encode()
    return headers


def _int(raw: bytes | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def source_position(headers: Mapping[str, bytes | None]) -> SourcePosition:
    """Where a dead letter came from: (topic, partition, offset, envelope index); parts that
    are missing or unreadable are None (the topic "")."""
    topic = headers.get(SOURCE_TOPIC)
    return (
        topic.decode("utf-8", "replace") if topic else "",
        _int(headers.get(SOURCE_PARTITION)),
        _int(headers.get(SOURCE_OFFSET)),
        _int(headers.get(ENVELOPE_INDEX)),
    )


__all__ = [
    "DEAD_LETTERED_AT",
    "DETAIL",
    "ENVELOPE_INDEX",
    "REASON",
    "SOURCE_OFFSET",
    "SOURCE_PARTITION",
    "SOURCE_TOPIC",
    "SourcePosition",
    "dead_letter_headers",
    "source_position",
]
