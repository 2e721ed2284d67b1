"""Turn a batch of raw Kafka messages into counter updates and rejects (pure, no I/O).

Nothing a message holds can stop the batch: an exception while decoding a message or planning
one of its events makes that message (or event) a reject with reason ``processing_error``, the
exception's type and message as its detail, and the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from socialpulse.core.config_types import format_duration
from streams.counted import CountedEvent, EventType
from streams.counters import (
    Add,
    dimension_fields,
    filtered_fields,
    gauge_value,
    interaction_fields,
    mention_fields,
    unique_member,
)
from streams.decoding import Decoded, InvalidEvent, decode_message
from streams.events import Interaction, Mention, MetricSnapshot
from streams.post_context import post_sample
from streams.sentiment import NO_SENTIMENT, mention_sentiment
from streams.windows import WindowPlan

__all__ = [
    "BatchPlan",
    "EventType",
    "RawMessage",
    "SnapshotPlan",
    "plan_batch",
    "plan_snapshots",
    "processing_error",
    "unknown_brand_or_platform",
]


@dataclass(frozen=True)
class RawMessage:
    """One Kafka message as the worker received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    index: int | None = None  # an event's position in an envelope (the value is that event)

    def item(self, decoded: Decoded) -> RawMessage:
        """The message narrowed to one decoded event of it (itself for a one-event message)."""
        if decoded.index is None:
            return self
        return replace(self, value=decoded.item_bytes(), index=decoded.index)


@dataclass
class BatchPlan:
    """What to write for a batch: counter updates (each with the message it came from) and
    rejected messages."""

    events: int = 0  # events in the batch's messages (an envelope holds many)
    counted: list[CountedEvent] = field(default_factory=list)
    # counted[i] came from sources[i]: the message and the decoded event of it
    sources: list[tuple[RawMessage, Decoded]] = field(default_factory=list)
    rejected: list[tuple[RawMessage, InvalidEvent]] = field(default_factory=list)
    too_late: list[RawMessage] = field(default_factory=list)

    def count(self, event: CountedEvent, message: RawMessage, decoded: Decoded) -> None:
        """Add a counter update from ``decoded``, an event of ``message``."""
        self.counted.append(event)
        self.sources.append((message, decoded))

    def source_of(self, event: CountedEvent) -> RawMessage:
        """The message (narrowed to the event, for an envelope) a counted event came from."""
        for counted, (message, decoded) in zip(self.counted, self.sources, strict=True):
            if counted is event:
                return message.item(decoded)
        raise KeyError(f"event {event.event_id!r} is not one of this batch's")


def processing_error(exc: BaseException) -> InvalidEvent:
    """The dead-letter reason of an event whose processing raised: the exception's type and
    message (a fault of ours or of a library on this input; the event is kept to replay)."""
    message = " ".join(str(exc).split())[:300]
    return InvalidEvent("processing_error", f"{type(exc).__name__}: {message}")


def plan_batch(
    messages: Sequence[RawMessage],
    event_type: EventType,
    windows: WindowPlan,
    now: float,
    bot_authors: Collection[str] = frozenset(),
    limit_author_rate: bool = False,
    known: Mapping[str, Collection[str]] | None = None,
) -> BatchPlan:
    """Decode every message: valid, timely ones become counter updates; events older than the
    allowed lateness are set aside as too late; the others are rejects with a reason. Events
    from bots (flagged by the source or listed in ``bot_authors``, casefolded) count only as
    filtered; with ``limit_author_rate`` the store filters authors posting too fast. With
    ``known`` (brand -> its platforms; strict mode), events of other brands or platforms are
    rejects too."""
    model: type[Mention] | type[Interaction] = Mention if event_type == "mention" else Interaction
    plan = BatchPlan()
    for message in messages:
        try:
            decoded_events = decode_message(message.value, model)
        except Exception as exc:  # a decoder fault: this message only, never the batch
            plan.events += 1
            plan.rejected.append((message, processing_error(exc)))
            continue
        for decoded in decoded_events:
            try:
                _plan_event(
                    plan,
                    message,
                    decoded,
                    event_type,
                    windows,
                    now,
                    bot_authors,
                    limit_author_rate,
                    known,
                )
            except Exception as exc:  # e.g. a sentiment scorer failing on some text
                plan.rejected.append((message.item(decoded), processing_error(exc)))
    return plan


@dataclass
class SnapshotPlan:
    """A batch of snapshot messages decoded: the snapshots to count (each with the message it
    came from, narrowed to it in an envelope) and the rejects."""

    events: int = 0
    snapshots: list[MetricSnapshot] = field(default_factory=list)
    sources: list[RawMessage] = field(default_factory=list)
    rejected: list[tuple[RawMessage, InvalidEvent]] = field(default_factory=list)


def plan_snapshots(
    messages: Sequence[RawMessage],
    windows: WindowPlan,
    now: float,
    known: Mapping[str, Collection[str]] | None = None,
) -> SnapshotPlan:
    """Decode snapshot messages. No lateness applies: an object's state, not a dedupe set,
    makes an old snapshot count once (or not at all, out of order); one from further ahead
    than clock skew explains, or (with ``known``) of another brand or platform, is a reject."""
    plan = SnapshotPlan()
    for message in messages:
        try:
            decoded_events = decode_message(message.value, MetricSnapshot)
        except Exception as exc:  # a decoder fault: this message only, never the batch
            plan.events += 1
            plan.rejected.append((message, processing_error(exc)))
            continue
        for decoded in decoded_events:
            plan.events += 1
            event = decoded.event
            if isinstance(event, MetricSnapshot) and known is not None:
                event = unknown_brand_or_platform(event, known) or event
            if (
                isinstance(event, MetricSnapshot)
                and windows.timing(event.ts.timestamp(), now) == "future"
            ):
                ahead = format_duration(windows.max_future)
                event = InvalidEvent(
                    "ts_in_future", f"ts: {event.ts.isoformat()} is more than {ahead} ahead of now"
                )
            if isinstance(event, MetricSnapshot):
                plan.snapshots.append(event)
                plan.sources.append(message.item(decoded))
            else:
                assert isinstance(event, InvalidEvent)
                plan.rejected.append((message.item(decoded), event))
    return plan


def unknown_brand_or_platform(
    event: Mention | Interaction | MetricSnapshot, known: Mapping[str, Collection[str]]
) -> InvalidEvent | None:
    """Why a strict worker refuses an event of a brand or platform brands.yaml does not list."""
    if event.brand not in known:
        return InvalidEvent(
            "unknown_brand",
            f"brand: {event.brand!r} is not in brands.yaml (known: {', '.join(sorted(known))})",
        )
    if event.platform not in known[event.brand]:
        platforms = ", ".join(sorted(known[event.brand]))
        return InvalidEvent(
            "unknown_platform",
            f"platform: {event.platform!r} is not a platform of {event.brand} in brands.yaml "
            f"({platforms})",
        )
    return None


def _plan_event(
    plan: BatchPlan,
    message: RawMessage,
    decoded: Decoded,
    event_type: EventType,
    windows: WindowPlan,
    now: float,
    bot_authors: Collection[str],
    limit_author_rate: bool,
    known: Mapping[str, Collection[str]] | None = None,
) -> None:
    plan.events += 1
    event = decoded.event
    if isinstance(event, Mention | Interaction) and known is not None:
        event = unknown_brand_or_platform(event, known) or event
    if isinstance(event, InvalidEvent):
        plan.rejected.append((message.item(decoded), event))
        return
    assert isinstance(event, Mention | Interaction)
    ts = event.ts.timestamp()
    timing = windows.timing(ts, now)
    if timing == "too_late":
        plan.too_late.append(message.item(decoded))
        return
    if timing == "future":
        ahead = format_duration(windows.max_future)
        plan.rejected.append(
            (
                message.item(decoded),
                InvalidEvent(
                    "ts_in_future",
                    f"ts: {event.ts.isoformat()} is more than {ahead} ahead of now",
                ),
            )
        )
        return
    who = event.author if isinstance(event, Mention) else event.user_id
    instead = filtered_fields(event.platform)
    if event.is_bot or who.casefold() in bot_authors:
        plan.count(
            CountedEvent(
                event.brand,
                event.id,
                ts,
                instead,
                event_type,
                excluded="bot",
                platform=event.platform,
            ),
            message,
            decoded,
        )
        return
    source: str | None = None
    gauge = care = None
    sample: dict[str, Any] | None = None
    dimensions: Sequence[Add] = ()
    if isinstance(event, Mention) and event.from_brand:
        fields, care = mention_fields(event, NO_SENTIMENT), ("reply", event.thread)
    elif isinstance(event, Mention):
        sentiment = mention_sentiment(event)
        fields, source = mention_fields(event, sentiment), sentiment.source
        sample = post_sample(event, sentiment.label)
        care = ("inbound", event.thread) if event.needs_reply else None
    else:
        fields, gauge = interaction_fields(event), gauge_value(event)
        dimensions = dimension_fields(event, fields)
    # Authors of mentions may be rate-limited; the brand's own replies never are.
    mention_author = isinstance(event, Mention) and not event.from_brand
    limited = who if limit_author_rate and mention_author else None
    plan.count(
        CountedEvent(
            event.brand,
            event.id,
            ts,
            fields,
            event_type,
            source,
            limited,
            instead,
            unique=unique_member(event),
            gauge=gauge,
            care=care,
            platform=event.platform,
            sample=sample,
            dimension_fields=dimensions,
        ),
        message,
        decoded,
    )
