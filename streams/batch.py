"""Turn a batch of raw Kafka messages into counter updates and rejects (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from streams.counters import interaction_fields, mention_fields
from streams.events import Interaction, InvalidEvent, Mention, decode
from streams.redis_counts import CountedEvent
from streams.sentiment import mention_sentiment
from streams.windows import bucket_start

EventType = Literal["mention", "interaction"]


@dataclass(frozen=True)
class RawMessage:
    """One Kafka message as the worker received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class BatchPlan:
    """What to write for a batch: counter updates and rejected messages."""

    counted: list[CountedEvent] = field(default_factory=list)
    rejected: list[tuple[RawMessage, InvalidEvent]] = field(default_factory=list)


def plan_batch(
    messages: Sequence[RawMessage], event_type: EventType, bucket_seconds: int
) -> BatchPlan:
    """Decode every message; valid ones become counter updates, the others rejects with a reason."""
    plan = BatchPlan()
    for message in messages:
        if event_type == "mention":
            mention = decode(message.value, Mention)
            if isinstance(mention, InvalidEvent):
                plan.rejected.append((message, mention))
                continue
            sentiment = mention_sentiment(mention)
            event: Mention | Interaction = mention
            fields, source = mention_fields(mention, sentiment), sentiment.source
        else:
            interaction = decode(message.value, Interaction)
            if isinstance(interaction, InvalidEvent):
                plan.rejected.append((message, interaction))
                continue
            event, fields, source = interaction, interaction_fields(interaction), None
        plan.counted.append(
            CountedEvent(
                brand=event.brand,
                event_id=event.id,
                bucket=bucket_start(event.ts, bucket_seconds),
                fields=fields,
                sentiment_source=source,
            )
        )
    return plan
