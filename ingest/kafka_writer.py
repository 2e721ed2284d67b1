"""The gateway's Kafka side: accepted events written with acks=all, keyed by brand, with a
bound on events in flight so a slow broker turns into 429s instead of unbounded memory.

A request is answered only after Kafka has acknowledged every one of its events; when that
does not happen in time the request fails as a whole (503). Some of its events may have been
written: a retry is safe, because event ids make the worker count each event once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from ingest.validation import Accepted
from socialpulse.connections import kafka_security
from socialpulse.settings import Settings

ENVELOPE_EVENTS = 500  # events per Kafka message (an envelope; see streams.events)
ENVELOPE_BYTES = 900 * 1024  # under the broker's default 1 MiB message limit


class Busy(Exception):
    """Too many events are waiting for Kafka: the client should retry later."""


class NotAcknowledged(Exception):
    """Kafka did not acknowledge the events in time (or refused them)."""


def envelopes(events: Sequence[Accepted]) -> Iterable[tuple[str, str, bytes]]:
    """(event type, brand, message value) per envelope: one brand's events of one type, in
    arrival order, at most ENVELOPE_EVENTS and ENVELOPE_BYTES each."""
    groups: dict[tuple[str, str], list[bytes]] = {}
    for event in events:
        body = json.dumps(event.body, ensure_ascii=False).encode()
        groups.setdefault((event.type, event.brand), []).append(body)
    for (kind, brand), bodies in groups.items():
        chunk: list[bytes] = []
        size = 2
        for body in bodies:
            if chunk and (len(chunk) >= ENVELOPE_EVENTS or size + len(body) + 1 > ENVELOPE_BYTES):
                yield kind, brand, b"[" + b",".join(chunk) + b"]"
                chunk, size = [], 2
            chunk.append(body)
            size += len(body) + 1
        if chunk:
            yield kind, brand, b"[" + b",".join(chunk) + b"]"


class KafkaWriter:
    """Produces accepted events to the mention and interaction topics."""

    def __init__(self, settings: Settings, max_in_flight: int, timeout: float):
        self.topics = {
            "mention": settings.pipeline.topics.mentions,
            "interaction": settings.pipeline.topics.interactions,
        }
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.in_flight = 0
        self._options: dict[str, Any] = {
            "bootstrap_servers": settings.pipeline.kafka.bootstrap_servers,
            "client_id": "socialpulse-gateway",
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_request_size": 2 * 1024 * 1024,
            "request_timeout_ms": int(timeout * 1000),
            **kafka_security(),
        }
        self._producer: Any = None  # made in start(): aiokafka needs the running loop

    async def start(self) -> None:
        """Connect to Kafka (raises when the brokers cannot be reached)."""
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()

    async def write(self, events: Sequence[Accepted]) -> None:
        """Write ``events`` and wait for Kafka's acknowledgement of all of them; Busy when the
        in-flight bound would be passed (nothing written), NotAcknowledged on timeout/error."""
        if not events:
            return
        if self.in_flight + len(events) > self.max_in_flight:
            raise Busy(f"{self.in_flight} events already wait for Kafka")
        self.in_flight += len(events)
        try:
            # The timeout covers waiting for metadata and buffer space too, not just the acks.
            await asyncio.wait_for(self._send_all(events), self.timeout)
        except TimeoutError as exc:
            raise NotAcknowledged(f"Kafka did not acknowledge within {self.timeout:g} s") from exc
        except Exception as exc:  # aiokafka's errors: the broker refused or went away
            raise NotAcknowledged(f"Kafka refused the events: {exc!r}") from exc
        finally:
            self.in_flight -= len(events)

    async def _send_all(self, events: Sequence[Accepted]) -> None:
        acks: list[Any] = []
        for kind, brand, value in envelopes(events):
            acks.append(
                await self._producer.send(self.topics[kind], value=value, key=brand.encode())
            )
        await asyncio.gather(*acks)
