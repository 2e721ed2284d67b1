"""The gateway's Kafka side: accepted events written with acks=all, keyed by brand, with a
bound on events in flight so a slow broker turns into 429s instead of unbounded memory.

A request is answered only after Kafka has acknowledged every one of its events; when that
does not happen in time the request fails as a whole (503). Some of its events may have been
written: a retry is safe, because event ids make the worker count each event once.

The writer connects in the background and keeps trying until Kafka answers, so a gateway
started while Kafka is down serves 503s (and /healthz says unavailable) instead of failing to
start. Stopping is bounded whatever Kafka is doing: requests still waiting for acks are told
Kafka did not acknowledge (503), and the producer's final flush gets a fixed time, then is
abandoned; nothing it held was acknowledged to anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaProducer

from ingest.validation import Accepted, event_topics
from socialpulse.core.config import KafkaSettings, TopicSettings
from socialpulse.core.connections import kafka_security

log = logging.getLogger(__name__)

ENVELOPE_EVENTS = 500  # events per Kafka message (an envelope; see streams.events)
ENVELOPE_BYTES = 900 * 1024  # under the broker's default 1 MiB message limit
RETRY_CONNECT = 2.0  # seconds between attempts to reach Kafka
WARN_EVERY = 30  # attempts between two warnings that Kafka is still not reachable
STOP_PRODUCER_WITHIN = 2.0  # seconds the producer's final flush and close may take

T = TypeVar("T")


class Busy(Exception):
    """Too many events are waiting for Kafka: the client should retry later."""


class NotAcknowledged(Exception):
    """Kafka did not acknowledge the events in time (or refused them, or is not connected)."""


def envelopes(events: Sequence[Accepted]) -> Iterable[tuple[str, str, bytes]]:
    """(event type, brand, message value) per envelope: one brand's events of one type, in
    arrival order, at most ENVELOPE_EVENTS and ENVELOPE_BYTES each."""
    groups: dict[tuple[str, str], list[bytes]] = {}
    for event in events:
        # orjson: validation has refused whatever it could not write exactly (NaN, ints over
        # 64 bits, lone surrogates), so this never raises.
        body = orjson.dumps(event.body)
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


async def in_daemon_thread(work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a daemon thread: unlike asyncio.to_thread's pool, a thread
    stuck on an unreachable broker does not keep the process from exiting."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="kafka-prepare", daemon=True).start()
    return await done


async def bounded(work: Awaitable[Any], seconds: float) -> bool:
    """Wait at most ``seconds`` for ``work``; True when it finished. An unfinished one is
    cancelled but not awaited: a client stuck on a dead broker may not even end on cancel."""
    task = asyncio.ensure_future(work)
    finished, _ = await asyncio.wait({task}, timeout=seconds)
    if not finished:
        task.cancel()
        return False
    if not task.cancelled() and task.exception() is not None:
        log.warning("ingest: while stopping Kafka: %r", task.exception())
    return True


class KafkaWriter:
    """Produces accepted events to the mention, interaction and snapshot topics."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        max_in_flight: int,
        timeout: float,
        prepare: Callable[[], object] | None = None,
    ):
        self.topics: dict[str, str] = {kind: name for kind, name in event_topics(topics).items()}
        self.bootstrap = kafka.bootstrap_servers
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.in_flight = 0
        self.prepare = prepare  # e.g. create missing topics; blocking, run in a thread
        self._options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": "socialpulse-gateway",
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_request_size": 2 * 1024 * 1024,
            "request_timeout_ms": int(timeout * 1000),
            **kafka_security(),
        }
        self._producer: Any = None  # made when connecting: aiokafka needs the running loop
        self._connecting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def connected(self) -> bool:
        """Whether the producer has reached Kafka (and is not stopping)."""
        return self._producer is not None and not self._stop_requested()

    async def start(self) -> None:
        """Connect to Kafka once (raises when the brokers cannot be reached)."""
        if self.prepare is not None:
            await in_daemon_thread(self.prepare)
        producer = AIOKafkaProducer(**self._options)
        try:
            await asyncio.wait_for(producer.start(), self.timeout)
        except BaseException:
            await bounded(producer.stop(), STOP_PRODUCER_WITHIN)
            raise
        self._producer = producer

    def start_in_background(self) -> None:
        """Keep trying to connect until Kafka answers or the writer stops; meanwhile writes
        fail with NotAcknowledged (503)."""
        self._connecting = asyncio.get_running_loop().create_task(self._keep_connecting())

    async def _keep_connecting(self) -> None:
        attempts = 0
        while not self._stop_requested():
            try:
                await self.start()
            except Exception as exc:  # aiokafka's and kafka-python's errors, timeouts
                if attempts % WARN_EVERY == 0:  # a line a minute, not one every 2 s
                    log.warning(
                        "ingest: Kafka at %s not reachable (%r); retrying every %g s, answering "
                        "503 meanwhile (check kafka.bootstrap_servers, or start Kafka)",
                        self.bootstrap,
                        exc,
                        RETRY_CONNECT,
                    )
                attempts += 1
                await asyncio.sleep(RETRY_CONNECT)
            else:
                log.info("ingest: connected to Kafka at %s", self.bootstrap)
                return

    def refuse_waiting(self) -> None:
        """Stop waiting for Kafka: writes in progress and new ones fail with NotAcknowledged
        at once (the gateway is stopping; their clients get 503 and retry)."""
        self._stop_event().set()

    async def stop(self, within: float = STOP_PRODUCER_WITHIN) -> None:
        """Refuse further waiting, stop connecting, then flush and disconnect, giving the
        producer at most ``within`` seconds."""
        self.refuse_waiting()
        if self._connecting is not None:
            self._connecting.cancel()
        producer, self._producer = self._producer, None
        if producer is not None and not await bounded(producer.stop(), within):
            log.warning(
                "ingest: Kafka at %s did not finish the producer's flush within %g s; stopped "
                "without it (nothing unacknowledged was reported as accepted)",
                self.bootstrap,
                within,
            )

    async def write(self, events: Sequence[Accepted]) -> None:
        """Write ``events`` and wait for Kafka's acknowledgement of all of them; Busy when the
        in-flight bound would be passed (nothing written), NotAcknowledged on timeout, error,
        before Kafka is connected and while stopping."""
        if not events:
            return
        if self._producer is None or self._stop_requested():
            raise NotAcknowledged(
                f"the gateway is stopping; Kafka at {self.bootstrap} did not acknowledge"
                if self._stop_requested()
                else f"not connected to Kafka at {self.bootstrap} yet"
            )
        if self.in_flight + len(events) > self.max_in_flight:
            raise Busy(f"{self.in_flight} events already wait for Kafka")
        self.in_flight += len(events)
        sending = asyncio.ensure_future(self._send_all(self._producer, events))
        stopping = asyncio.ensure_future(self._stop_event().wait())
        try:
            # The timeout covers waiting for metadata and buffer space too, not just the acks.
            finished, _ = await asyncio.wait(
                {sending, stopping}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if sending in finished:
                error = sending.exception()
                if error is not None:  # aiokafka's errors: the broker refused or went away
                    raise NotAcknowledged(f"Kafka refused the events: {error!r}") from error
                return
            if stopping in finished:
                raise NotAcknowledged(
                    "the gateway is stopping before Kafka acknowledged the events"
                )
            raise NotAcknowledged(f"Kafka did not acknowledge within {self.timeout:g} s")
        finally:
            for task in (sending, stopping):
                if not task.done():
                    task.cancel()
            self.in_flight -= len(events)

    def _stop_event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    def _stop_requested(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def _send_all(self, producer: Any, events: Sequence[Accepted]) -> None:
        acks: list[Any] = []
        for kind, brand, value in envelopes(events):
            acks.append(await producer.send(self.topics[kind], value=value, key=brand.encode()))
        await asyncio.gather(*acks)
