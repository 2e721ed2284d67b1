"""The gateway's Kafka writer: envelopes per brand and type, the in-flight bound, timeouts
(a stand-in producer; the real broker is in tests/test_ingest_e2e.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ingest.kafka_writer import (
    ENVELOPE_EVENTS,
    Busy,
    KafkaWriter,
    NotAcknowledged,
    envelopes,
)
from ingest.validation import Accepted
from socialpulse.paths import project_home
from socialpulse.settings import load_settings

SETTINGS = load_settings(project_home() / "config")


def accepted(n: int, brand: str = "acme", kind: str = "mention", size: int = 10) -> list[Accepted]:
    return [Accepted(kind, brand, f"e{n}-{i}", 0.0, {"id": f"e{i}", "text": "x" * size})  # type: ignore[arg-type]
            for i in range(n)]  # fmt: skip


def test_envelopes_group_by_type_and_brand_and_respect_limits() -> None:
    events = accepted(ENVELOPE_EVENTS + 1) + accepted(2, "globex") + accepted(1, kind="interaction")
    out = [(kind, brand, len(json.loads(value))) for kind, brand, value in envelopes(events)]
    assert out == [
        ("mention", "acme", ENVELOPE_EVENTS),
        ("mention", "acme", 1),
        ("mention", "globex", 2),
        ("interaction", "acme", 1),
    ]
    big = accepted(5, size=300 * 1024)  # three of these would pass 900 KiB
    assert [len(json.loads(v)) for _, _, v in envelopes(big)] == [2, 2, 1]


class StandIn:
    """Acknowledges sends when ``ack`` is set."""

    def __init__(self) -> None:
        self.ack = asyncio.Event()
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.ack.wait()
            done.set_result(None)

        asyncio.get_running_loop().create_task(later())
        return done


async def test_in_flight_bound_gives_busy_and_timeout_not_acknowledged() -> None:
    writer = KafkaWriter(SETTINGS, max_in_flight=10, timeout=0.3)
    producer = StandIn()
    writer._producer = producer  # type: ignore[assignment]
    waiting = asyncio.create_task(writer.write(accepted(8)))
    await asyncio.sleep(0.05)
    assert writer.in_flight == 8
    with pytest.raises(Busy, match="8 events already wait for Kafka"):
        await writer.write(accepted(3))
    assert len(producer.sent) == 1  # the busy request wrote nothing
    with pytest.raises(NotAcknowledged, match=r"did not acknowledge within 0\.3 s"):
        await waiting
    assert writer.in_flight == 0
    producer.ack.set()
    await writer.write(accepted(10))
    assert writer.in_flight == 0 and len(producer.sent) == 2
    assert producer.sent[1][0] == SETTINGS.pipeline.topics.mentions
    assert producer.sent[1][1] == b"acme"
