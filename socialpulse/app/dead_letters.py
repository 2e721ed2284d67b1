"""Reading and replaying the dead-letter topic.

The worker sends every message it cannot process to ``topics.dead_letter`` with the original
bytes and key, and headers (socialpulse.core.dead_letter): reason, detail, source_topic,
source_partition, source_offset, dead_lettered_at (and envelope_index for one event of an
envelope). ``socialpulse dlq`` lists and shows them, and replays them to their source topic
once the cause is fixed (a config change, a fixed producer). Replaying is safe to repeat:
events count once by id.

A dead letter is known by its source position: a worker killed after writing some of a
batch's dead letters and before committing its offsets writes them again on restart, and
:func:`once` keeps one of each (the other copies' positions in ``also_at``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from ingest.event_producer import kafka_producer
from socialpulse.app.settings import Settings
from socialpulse.core import dead_letter as header
from socialpulse.core.connections import kafka_security
from socialpulse.core.dead_letter import SourcePosition, source_position


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str
    detail: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    dead_lettered_at: float | None
    envelope_index: int | None = None
    also_at: tuple[str, ...] = ()  # other copies of it in the topic (partition:offset)

    @property
    def position(self) -> SourcePosition | None:
        """Where it came from, as (topic, partition, offset, envelope index); None when the
        headers do not say (then it is its own)."""
        if not self.source_topic or self.source_partition is None or self.source_offset is None:
            return None
        return (self.source_topic, self.source_partition, self.source_offset, self.envelope_index)

    @property
    def where(self) -> str:
        """Its position in the dead-letter topic, as ``partition:offset``."""
        return f"{self.partition}:{self.offset}"

    @property
    def source(self) -> str:
        """Where it came from: ``topic[partition]@offset`` (``#index`` in an envelope)."""
        index = "" if self.envelope_index is None else f" #{self.envelope_index}"
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}{index}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the value as text when it is UTF-8, else as hex."""
        try:
            value: str = self.value.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            value, encoding = self.value.hex(), "hex"
        return {
            "at": self.where,
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "dead_lettered_at": self.dead_lettered_at,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "value": value,
            "value_encoding": encoding,
            "copies": 1 + len(self.also_at),
        }


def parse(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]],
) -> DeadLetter:
    """A dead letter from a Kafka record; missing headers are empty, never an error."""
    h = dict(headers)
    text = {k: v.decode("utf-8", "replace") for k, v in h.items() if v is not None}
    at = text.get(header.DEAD_LETTERED_AT)
    try:
        when = float(at) if at else None
    except ValueError:
        when = None
    topic, source_partition, source_offset, index = source_position(h)
    return DeadLetter(
        partition,
        offset,
        key,
        value or b"",
        text.get(header.REASON, "unknown"),
        text.get(header.DETAIL, ""),
        topic,
        source_partition,
        source_offset,
        when,
        index,
    )


def once(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """Each dead letter once: copies with the same source position are one, the first
    written, listing where the others are."""
    first: dict[SourcePosition, int] = {}
    kept: list[DeadLetter] = []
    for letter in letters:
        position = letter.position
        if position is None or position not in first:
            if position is not None:
                first[position] = len(kept)
            kept.append(letter)
            continue
        i = first[position]
        kept[i] = replace(kept[i], also_at=(*kept[i].also_at, letter.where))
    return kept


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> Iterator[DeadLetter]:
    """Every dead letter now in the topic, oldest first per partition (no consumer group: reading
    moves nothing, and every reader sees all of them)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout * 1000),
        **kafka_security(),
    )
    try:
        topic = settings.pipeline.topics.dead_letter
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        left = {tp: end for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield parse(
                            tp.partition, record.offset, record.key, record.value, record.headers
                        )
                if consumer.position(tp) >= ends[tp]:
                    left.pop(tp, None)
    finally:
        consumer.close()


def select(
    letters: Iterable[DeadLetter],
    reasons: Sequence[str] = (),
    at: Sequence[str] = (),
    since: float | None = None,
) -> list[DeadLetter]:
    """The dead letters matching every filter given: reasons, ``partition:offset`` positions,
    dead-lettered at or after ``since`` (unix time)."""
    return [
        letter
        for letter in letters
        if (not reasons or letter.reason in reasons)
        and (not at or any(where in at for where in (letter.where, *letter.also_at)))
        and (since is None or (letter.dead_lettered_at or 0) >= since)
    ]


def table(letters: Sequence[DeadLetter]) -> str:
    """One line per dead letter, for people."""
    lines = [f"{'at':<10} {'dead-lettered (UTC)':<20} {'reason':<22} {'source':<40} detail"]
    for letter in letters:
        when = (
            datetime.fromtimestamp(letter.dead_lettered_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            if letter.dead_lettered_at
            else "-"
        )
        detail = letter.detail if len(letter.detail) <= 60 else letter.detail[:57] + "..."
        lines.append(
            f"{letter.where:<10} {when:<20} {letter.reason:<22} {letter.source:<40} {detail}"
        )
    return "\n".join(lines)


def replay(settings: Settings, letters: Sequence[DeadLetter]) -> int:
    """Produce each dead letter's original bytes and key to its source topic again (acks from
    all replicas); the count sent. A letter without a source topic is skipped."""
    producer = kafka_producer(settings.pipeline.kafka, "socialpulse-dlq-replay", linger_ms=5)
    sent = 0
    try:
        for letter in letters:
            if not letter.source_topic:
                continue
            producer.send(
                letter.source_topic,
                key=letter.key,
                value=letter.value,
                headers=[
                    (
                        "replayed_from",
                        f"{settings.pipeline.topics.dead_letter}:{letter.where}".encode(),
                    )
                ],
            )
            sent += 1
        producer.flush(60)
    finally:
        producer.close()
    return sent


def as_json(letters: Sequence[DeadLetter]) -> str:
    """One JSON object per line."""
    return "\n".join(json.dumps(letter.to_dict(), sort_keys=True) for letter in letters)


__all__ = [
    "DeadLetter",
    "as_json",
    "once",
    "parse",
    "read_dead_letters",
    "replay",
    "select",
    "table",
]
