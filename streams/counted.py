"""What the batch planner hands the count stores: one decoded, timely event in the store's terms
(who, which id, which bucket, which fields), and what applying a batch of them changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.counters import Add

EventType = Literal["mention", "interaction", "snapshot"]


@dataclass(frozen=True)
class CountedEvent:
    """What the store needs of a decoded event: who, which id, which bucket, which fields."""

    brand: str
    event_id: str
    ts: float  # event time, unix seconds
    fields: Sequence[Add]
    # Ids are unique per event type: a mention and an interaction may share a source id.
    event_type: EventType = "mention"
    sentiment_source: str | None = None  # mentions only: upstream or vader
    author: str | None = None  # whose posting rate is limited (mentions); None: not limited
    filtered_fields: Sequence[Add] = ()  # what it adds instead when its author is over the rate
    excluded: str | None = None  # why its fields are "filtered" from the start (e.g. "bot")
    unique: tuple[str, str] | None = None  # (field, member) for a distinct count, if counted
    gauge: tuple[str, float] | None = None  # (field, value) of a snapshot such as followers
    care: tuple[str, str] | None = None  # ("inbound" | "reply", conversation) for care messages
    dimension_fields: Sequence[Add] = ()  # per campaign / content item (see counters.py)
    platform: str = ""  # where it happened (care matching is per platform)
    sample: dict[str, Any] | None = None  # mentions: what an incident may show (post_context)


@dataclass(frozen=True)
class Failed:
    """An event the store could not apply, and why (the exception's type and message)."""

    event: CountedEvent
    error: str


@dataclass(frozen=True)
class AppliedBatch:
    """What a batch changed: events counted in the KPIs, new events filtered out because their
    author posts faster than the limit, and events that failed (nothing of theirs was written:
    they are dead-lettered). The rest were redeliveries."""

    counted: list[CountedEvent]
    filtered: list[CountedEvent]
    failed: list[Failed] = field(default_factory=list)

    def __add__(self, other: AppliedBatch) -> AppliedBatch:
        return AppliedBatch(
            self.counted + other.counted,
            self.filtered + other.filtered,
            self.failed + other.failed,
        )


__all__ = ["AppliedBatch", "CountedEvent", "EventType", "Failed"]
