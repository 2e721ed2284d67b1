"""Kafka messages handed to the worker a batch at a time, past Faust's per-message path.

Faust delivers every message on its own: the fetcher awaits ``wait_first`` (two tasks) per
message, the conductor decodes it into an event and queues it for a stream, the stream sets it
current, runs its processors and acknowledges it. On the 2-core development machine that costs
~160 us a message: a Faust agent that does nothing at all reads ~6,200 messages/s, below what
a SocialPulse worker must count with one event per message (the README's Benchmark).

Faust stays the framework: its consumer group and rebalancing, offset commits, the conductor's
subscription, timers, the worker and its signals. Only the step from a fetched message to our
code changes. A :class:`BatchingApp` registers a topic with a handler; its consumer's drain loop
(the one :class:`faust.transport.consumer.Consumer` runs per fetch) collects that topic's
messages instead of delivering them one by one, and calls the handler once per batch: up to
``max_size`` messages (or ``max_bytes`` of them), or fewer once the oldest has waited
``within`` seconds. Other topics
(Faust's own) keep the per-message path.

The handler is called in the drain loop and returns an awaitable, which runs as a task once
the topic's previous batch's has finished: a handler can do its CPU work (decoding, scoring)
when called and leave its I/O (the Redis write) to the awaitable, so the next batch is fetched
and prepared while this one's write waits on Redis; batches of a topic are still written one
at a time, in order. (An ``async def`` handler does all of its work in the task.)

A batch's messages are acknowledged when its awaitable has finished, never when it raised or
was cancelled, so the offsets Faust commits never pass a message whose effects are not in
Redis; from the moment a batch is handed to its handler its messages count as
unacknowledged, so a rebalance waits for it (``wait_empty``) before committing and giving
partitions up. Messages collected but not yet handed over when a rebalance begins are
dropped, not handled: they are not acknowledged, so the committed offsets stay before them
and whoever owns the partition next reads them again (this worker too: Faust seeks every
assigned partition to its committed offset). Handling them instead would write, during or
after the rebalance, messages of a partition that another worker now reads too; and counting
them as unacknowledged while collected deadlocks the rebalance, since the drain loop waits
for the flow to resume while ``wait_empty`` waits for them. A batch that failed stops the
topic's drain: the error is raised in the drain loop.

Written against faust-streaming 0.15 (``Consumer._drain_messages``); the test suite's pipeline
tests run through it on the real broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message

BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass
class _Batching:
    handler: BatchHandler
    max_size: int
    within: float
    max_bytes: int

    def full(self, pending: _Pending) -> bool:
        return len(pending.messages) >= self.max_size or pending.size >= self.max_bytes


@dataclass
class _Pending:
    messages: list[Message] = field(default_factory=list)
    since: float = 0.0
    size: int = 0  # bytes of the messages' values


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose drain loop hands the topics of ``app.batching`` to
    their handlers a batch at a time (see the module's docstring)."""

    async def _drain_messages(self, fetcher: Any) -> None:
        batching: dict[str, _Batching] = getattr(self.app, "batching", {})
        if not batching:
            await super()._drain_messages(fetcher)
            return
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        unacked = self._unacked_messages
        pending = {topic: _Pending() for topic in batching}
        in_flight: dict[str, asyncio.Future[None]] = {}
        since_yield = 0

        async def finish(work: Awaitable[None], batch: Sequence[Message]) -> None:
            await work
            # Only now: work that raised or was cancelled acknowledges nothing.
            for message in batch:
                self.ack(message)

        def drop_stale() -> None:
            # Collected before a rebalance began: see the module's docstring.
            current = self.app.consumer_generation_id
            for topic, waiting in pending.items():
                if waiting.messages and (
                    not self.flow_active or waiting.messages[0].generation_id != current
                ):
                    pending[topic] = _Pending()

        async def deliver(topic: str) -> None:
            drop_stale()
            batch = pending[topic].messages
            if not batch:
                return
            pending[topic] = _Pending()
            # In flight from here on (no await before): a rebalance waits for it.
            for message in batch:
                unacked.add(message)
            work = batching[topic].handler(batch)  # its CPU part, while the last batch writes
            previous = in_flight.pop(topic, None)
            if previous is not None:
                await previous  # in order, one at a time; raises what it raised
            in_flight[topic] = asyncio.ensure_future(finish(work, batch))

        async def settle() -> None:
            while in_flight:
                _, running = in_flight.popitem()
                await running

        async def deliver_due() -> None:
            if not self.flow_active:
                # A rebalance: what was collected is dropped, what is in flight finishes
                # (raising here what it raised) so that wait_empty can end.
                drop_stale()
                await settle()
            now = time.monotonic()
            for topic in list(pending):
                waiting, rule = pending[topic], batching[topic]
                if waiting.messages and (rule.full(waiting) or now - waiting.since >= rule.within):
                    await deliver(topic)
            commit_every = self._commit_every
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()

        def fetch_timeout() -> float:
            # Wait for more messages no longer than the oldest pending one may wait.
            due = [
                batching[topic].within - (time.monotonic() - waiting.since)
                for topic, waiting in pending.items()
                if waiting.messages
            ]
            return max(0.0, min([1.0, *due]))

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records = getmany(timeout=fetch_timeout())
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in records:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        rule = batching.get(message.topic)
                        if rule is not None:
                            drop_stale()
                            if not self.flow_active or (
                                message.generation_id != self.app.consumer_generation_id
                            ):
                                continue  # fetched before a rebalance: read again after it
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # read before (a seek back); Faust drops it too
                        if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if rule is None:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        else:
                            waiting = pending[message.topic]
                            if not waiting.messages:
                                waiting.since = time.monotonic()
                            waiting.messages.append(message)
                            waiting.size += len(message.value or b"")
                            if rule.full(waiting):
                                await deliver(message.topic)
                        set_read_offset(tp, offset)
                    await deliver_due()
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
            # Collected, never handled: not acknowledged, so read again after a restart.
            for running in in_flight.values():
                running.cancel()  # acknowledges nothing


class BatchingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchingConsumer`."""

    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose :meth:`batches` topics reach their handler a batch at a time."""

    batching: dict[str, _Batching]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.batching = {}
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)

    def batches(
        self, topic: faust.TopicT, max_size: int, within: float, max_bytes: int = 2**30
    ) -> Callable[[BatchHandler], BatchHandler]:
        """Decorate the handler of ``topic``'s messages: it is called with up to ``max_size``
        of them (or ``max_bytes`` of their values), or fewer once the oldest has waited
        ``within`` seconds; the awaitable it returns runs after the previous batch's, and the
        batch is acknowledged when that has finished."""
        if max_size < 1:
            raise ValueError(f"batches of {topic.get_topic_name()}: max_size must be >= 1")

        def register(handler: BatchHandler) -> BatchHandler:
            for name in topic.topics:
                self.batching[name] = _Batching(handler, max_size, within, max_bytes)
            self.topics.add(topic)  # subscribed by the conductor like an agent's topic
            return handler

        return register


__all__ = ["BatchHandler", "BatchingApp", "BatchingConsumer", "BatchingTransport"]
