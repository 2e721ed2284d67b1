"""What incidents show as their cause, kept per minute in the real Redis (record_context)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from streams.counted import CountedEvent
from streams.store.context_store import CONTEXT_TTL, record_context

pytestmark = pytest.mark.stack

MINUTE = 1_796_000_040  # a minute's start


def _mention(n: int, text_terms: list[str], sentiment: str, reach: int, **kw: Any) -> CountedEvent:
    sample = {
        "id": f"m{n}",
        "platform": "x",
        "author": f"@a{n}",
        "text": " ".join(text_terms),
        "url": None,
        "reach": reach,
        "lang": "en",
        "sentiment": sentiment,
        "terms": text_terms,
    }
    return CountedEvent("acme", f"m{n}", MINUTE + n, (), sample=sample, **kw)


def test_counts_and_top_posts_add_up_exactly_across_batches(stack: Settings) -> None:
    keys = RedisKeys(f"ctx{uuid.uuid4().hex[:8]}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)

    async def record(*batches: list[CountedEvent]) -> None:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            for batch in batches:
                await record_context(client, keys, batch)
        finally:
            await client.aclose()

    first = [
        _mention(1, ["refund", "broken"], "negative", 500),
        _mention(2, ["refund"], "neutral", 10),
        _mention(3, ["broken"], "negative", 9_000, excluded="bot"),  # bots add nothing
    ]
    second = [_mention(4, ["refund", "love"], "positive", 70)]
    try:
        asyncio.run(record(first, second))
        counts = sync.hgetall(keys.context_counts("acme", MINUTE))
        assert counts == {
            "x|refund": "3",
            "x|broken": "1",
            "x|love": "1",
            "x|-|refund": "1",
            "x|-|broken": "1",
            "x|lang:en": "3",
        }
        assert 0 < sync.ttl(keys.context_counts("acme", MINUTE)) <= CONTEXT_TTL
        posts = sync.zrange(keys.context_posts("acme", MINUTE, "x"), 0, -1, withscores=True)
        assert [(json.loads(p)["id"], score) for p, score in posts] == [
            ("m2", 10.0),
            ("m4", 70.0),
            ("m1", 500.0),
        ]
    finally:
        for key in sync.scan_iter(f"{keys.prefix}:*"):
            sync.delete(key)
