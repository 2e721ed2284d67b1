"""Producing events to Kafka, one per message or batched into envelopes per topic and brand.

An envelope (a JSON array of one brand's events; see streams.events) costs the broker and the
worker one message instead of many, which is what lets one worker keep up with a busy stream.
Events wait at most ``linger`` seconds for their envelope to fill, so batching adds little
latency at low rates.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaProducer

from socialpulse.core.config import KafkaSettings
from socialpulse.core.connections import kafka_security
from streams.events import MAX_ENVELOPE_EVENTS


def kafka_producer(kafka: KafkaSettings, client_id: str, linger_ms: int = 20) -> KafkaProducer:
    """A producer for event topics: bytes in, acks from all replicas."""
    return KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        client_id=client_id,
        **kafka_security(),
    )


class EventProducer:
    """Sends events keyed by brand; with ``envelope`` > 1, as envelopes of up to that many."""

    def __init__(self, producer: KafkaProducer, envelope: int = 1, linger: float = 0.1):
        if not 1 <= envelope <= MAX_ENVELOPE_EVENTS:
            raise ValueError(f"envelope size must be 1..{MAX_ENVELOPE_EVENTS}, not {envelope}")
        self.producer = producer
        self.envelope = envelope
        self.linger = linger
        self._pending: dict[tuple[str, str], list[bytes]] = {}
        self._oldest: dict[tuple[str, str], float] = {}
        self.messages = 0  # Kafka messages sent so far
        # Sends Kafka refused (after the client's retries): a caller that must know its events
        # were written (a poller before it moves its cursor) checks this after flush().
        self.errors: list[BaseException] = []

    def send(self, topic: str, event: dict[str, Any]) -> None:
        """Queue one event for ``topic``; sends whatever envelopes are full or due."""
        brand = str(event["brand"])
        value = json.dumps(event, ensure_ascii=False).encode()
        if self.envelope == 1:
            self.producer.send(topic, key=brand.encode(), value=value).add_errback(
                self.errors.append
            )
            self.messages += 1
            return
        slot = (topic, brand)
        pending = self._pending.setdefault(slot, [])
        if not pending:
            self._oldest[slot] = time.monotonic()
        pending.append(value)
        if len(pending) >= self.envelope:
            self._send_envelope(slot)
        self.send_due()

    def send_due(self) -> None:
        """Send envelopes whose oldest event has waited ``linger`` seconds."""
        now = time.monotonic()
        for slot in [s for s, t in self._oldest.items() if now - t >= self.linger]:
            self._send_envelope(slot)

    def flush(self, timeout: float = 30) -> None:
        """Send every pending envelope and wait until Kafka has acknowledged all messages."""
        for slot in list(self._pending):
            self._send_envelope(slot)
        self.producer.flush(timeout)

    def close(self, timeout: float = 30) -> None:
        """Flush, then close the Kafka producer."""
        self.flush(timeout)
        self.producer.close(timeout)

    def _send_envelope(self, slot: tuple[str, str]) -> None:
        events = self._pending.pop(slot, [])
        self._oldest.pop(slot, None)
        if events:
            topic, brand = slot
            envelope = b"[" + b",".join(events) + b"]"
            self.producer.send(topic, key=brand.encode(), value=envelope).add_errback(
                self.errors.append
            )
            self.messages += 1
