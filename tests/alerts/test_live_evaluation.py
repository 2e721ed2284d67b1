"""The worker's evaluation rounds (alerts.pipeline.LiveEvaluation) on the real Redis, each
round at a chosen time, so what a round fires is exact whatever the machine's pace."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.detection.rule_check import AlertEvent
from alerts.detection.store import DetectionStore
from alerts.notify.slack_message import slack_client
from alerts.pipeline import LiveEvaluation
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.connections import async_redis_client, redis_client
from socialpulse.core.redis_keys import RedisKeys
from streams.batch import RawMessage, plan_batch
from streams.store.redis_store import AsyncCountStore
from tests.conftest import write_config

RULE = "negative_mentions_high"


def negative_mentions(brand: str, times: list[float], now: float, settings: Settings) -> list:
    """Negative mentions on x at ``times``, planned as the worker plans them."""
    messages = [
        RawMessage(
            "mentions",
            0,
            n,
            brand.encode(),
            json.dumps(
                {
                    "id": f"m-{uuid.uuid4().hex}",
                    "ts": datetime.fromtimestamp(at, UTC).isoformat(),
                    "platform": "x",
                    "brand": brand,
                    "author": f"@user{n}",
                    "text": "refund now",
                    "sentiment": "negative",
                }
            ).encode(),
        )
        for n, at in enumerate(times)
    ]
    plan = plan_batch(messages, "mention", settings.window_plan, now)
    assert plan.rejected == [] and plan.too_late == []
    return plan.counted


@pytest.mark.stack
def test_a_crisis_in_a_ticks_settle_seconds_fires_early_in_the_round_that_evaluates_the_tick(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    # Mentions counted between a tick and its evaluation (its settle seconds) belong to the
    # next tick's window, which no early look could read before the tick was evaluated: the
    # round that evaluates it looks early at once, not a round (a second) later.
    settings = load_settings(write_config(tmp_path / "config", run_id, threshold=5))
    evaluation_settings = settings.alerts.evaluation
    every, settle = evaluation_settings.every, evaluation_settings.settle
    assert evaluation_settings.early and settle >= 2
    redis = settings.pipeline.redis
    tick = math.floor(time.time() / every) * every - 2 * every  # recent: within lateness

    async def rounds() -> tuple[list[AlertEvent], list[AlertEvent], list[AlertEvent]]:
        store = DetectionStore(
            async_redis_client(redis, decode_responses=True), RedisKeys(redis.key_prefix)
        )
        live = LiveEvaluation(
            settings,
            store,
            redis_client(redis, decode_responses=True),
            slack_client(settings.alerts.slack),
        )
        counts = AsyncCountStore(store.client, store.keys, settings.window_plan)
        try:
            before = await live.round(tick - every + settle + 0.5)  # the tick before: quiet
            # Six negatives in the first second after the tick, counted before its round.
            times = [tick + 0.1 + 0.15 * n for n in range(6)]
            applied = await counts.apply(negative_mentions("acme", times, tick + 1.5, settings))
            assert len(applied.counted) == 6
            at_tick = await live.round(tick + settle + 0.5)  # evaluates the tick, then looks
            after = await live.round(tick + settle + 1.5)  # the next round: nothing new
            return before, at_tick, after
        finally:
            await store.client.aclose()

    before, at_tick, after = asyncio.run(rounds())
    assert before == []
    assert [(e.rule, e.brand, e.platform, e.event, e.at, e.value) for e in at_tick] == [
        (RULE, "acme", "x", "fired", tick + every, 6)
    ]
    assert after == []
