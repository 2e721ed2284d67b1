"""Batches of a Faust stream whose events are acknowledged only once the batch is done.

Faust's own ``Stream.take_events`` acknowledges a batch's events in a ``finally``: also when
the code handling the batch raised or was cancelled (a stop while Redis is down), so their
offsets could be committed although nothing of them was counted. Here a batch is acknowledged
only when the consumer asks for the next one, i.e. after it has handled this one completely;
a batch given up on is never acknowledged, and its events are delivered again after a restart
or rebalance (and counted once, by id).

Otherwise the same as ``take_events`` (faust-streaming 0.15): up to ``max_`` events, or fewer
after ``within`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.types import EventT


async def acked_batches(
    stream: faust.StreamT[Any], max_: int, within: float
) -> AsyncIterator[list[EventT]]:
    """Yield lists of up to ``max_`` events (fewer after ``within`` seconds); each list's
    events are acknowledged when the next one is asked for, never when handling it failed."""
    real = cast(faust.Stream, stream)
    events: list[EventT] = []
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    channel = aiter(real.channel)

    async def add(value: Any) -> Any:
        nonlocal consuming
        if consuming is not None:
            try:
                await consuming
            finally:
                consuming = None
        event = real.current_event
        if event is None:
            raise RuntimeError("acked_batches: the stream has no current event")
        events.append(event)
        if len(events) >= max_:
            full.set()
            consumed.clear()
            await real.wait(consumed)  # type: ignore[arg-type]
        return value

    real.enable_acks = False  # we acknowledge, after the batch is done
    real.add_processor(add)
    real._enable_passive(channel)  # type: ignore[arg-type]
    try:
        while not real.should_stop:
            await real.wait_for_stopped(full, timeout=within)  # type: ignore[arg-type]
            if not events:
                continue
            consuming = asyncio.get_running_loop().create_future()
            batch = list(events)
            events.clear()
            try:
                yield batch
            except BaseException:
                # Handling stopped half-way (GeneratorExit, CancelledError): not acknowledged.
                raise
            else:
                for event in batch:
                    await real.ack(event)
            finally:
                if not consuming.done():
                    consuming.set_result(None)
                full.clear()
                consumed.set()
    finally:
        real._processors.remove(add)


__all__ = ["acked_batches"]
