"""The gateway's Kafka writer: envelopes per brand and type, the in-flight bound, timeouts
(a stand-in producer; the real broker is in tests/e2e/test_ingest_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import pytest

from ingest.kafka_writer import (
    ENVELOPE_EVENTS,
    Busy,
    KafkaWriter,
    NotAcknowledged,
    envelopes,
)
from ingest.validation import Accepted
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home

SETTINGS = load_settings(project_home() / "config")


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A port nothing listens on (bound and closed: the kernel does not hand it out at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


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
    writer = KafkaWriter(
        SETTINGS.pipeline.kafka, SETTINGS.pipeline.topics, max_in_flight=10, timeout=0.3
    )
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


def test_envelopes_are_compact_orjson() -> None:
    events = [Accepted("mention", "acme", "m-1", 0.0, {"id": "m-1", "text": "é 😍", "n": 1e308})]
    assert [value for _, _, value in envelopes(events)] == [
        '[{"id":"m-1","text":"é 😍","n":1e+308}]'.encode()
    ]


async def test_a_write_before_kafka_is_connected_is_not_acknowledged() -> None:
    writer = KafkaWriter(
        SETTINGS.pipeline.kafka, SETTINGS.pipeline.topics, max_in_flight=10, timeout=1.0
    )
    assert not writer.connected
    with pytest.raises(NotAcknowledged) as refused:
        await writer.write(accepted(1))
    bootstrap = SETTINGS.pipeline.kafka.bootstrap_servers
    assert str(refused.value) == f"not connected to Kafka at {bootstrap} yet"
    assert writer.in_flight == 0


async def test_stopping_answers_waiting_writes_at_once_and_refuses_new_ones() -> None:
    writer = KafkaWriter(
        SETTINGS.pipeline.kafka, SETTINGS.pipeline.topics, max_in_flight=10, timeout=60.0
    )
    writer._producer = StandIn()  # never acknowledges
    assert writer.connected
    waiting = asyncio.create_task(writer.write(accepted(3)))
    await asyncio.sleep(0.05)
    assert writer.in_flight == 3
    writer.refuse_waiting()
    with pytest.raises(NotAcknowledged) as told:
        await waiting
    assert str(told.value) == "the gateway is stopping before Kafka acknowledged the events"
    assert (writer.in_flight, writer.connected) == (0, False)
    with pytest.raises(NotAcknowledged, match=r"^the gateway is stopping; Kafka at "):
        await writer.write(accepted(1))


class StuckOnStop(StandIn):
    """A producer whose final flush never ends (a broker frozen with SIGSTOP) and that takes
    its time to end even when cancelled (here: until cancelled a second time, at the end of
    the test's event loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_called = False

    async def stop(self) -> None:
        self.stop_called = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)


async def test_stop_gives_a_stuck_producer_a_bounded_time() -> None:
    writer = KafkaWriter(
        SETTINGS.pipeline.kafka, SETTINGS.pipeline.topics, max_in_flight=10, timeout=60.0
    )
    producer = StuckOnStop()
    writer._producer = producer
    started = time.monotonic()
    await writer.stop(within=0.5)
    took = time.monotonic() - started
    assert producer.stop_called and not writer.connected
    assert 0.5 <= took < 1.5  # the bound is the spec: 0.5 s, not the producer's forever


async def test_connecting_to_an_absent_kafka_keeps_trying_until_stopped(unused_port: int) -> None:
    prepared: list[str] = []
    writer = KafkaWriter(
        SETTINGS.pipeline.kafka,
        SETTINGS.pipeline.topics,
        10,
        1.0,
        prepare=lambda: prepared.append("topics"),
    )
    writer.bootstrap = writer._options["bootstrap_servers"] = f"127.0.0.1:{unused_port}"
    writer.start_in_background()
    await asyncio.sleep(0.3)
    assert not writer.connected and prepared == ["topics"]
    with pytest.raises(
        NotAcknowledged, match=f"^not connected to Kafka at 127.0.0.1:{unused_port}"
    ):
        await writer.write(accepted(1))
    started = time.monotonic()
    await writer.stop(within=1.0)
    assert time.monotonic() - started < 1.5 and not writer.connected
