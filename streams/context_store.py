"""Keeps what incidents show as their cause in Redis: per brand and event-time minute, the
term and language counts and the top posts by reach of each platform (streams.post_context).
Kept for ``CONTEXT_TTL``: an incident looks back at most an hour, against the hour before."""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis.asyncio as aredis

from streams.post_context import count_fields
from streams.redis_counts import CountedEvent, RedisKeys

CONTEXT_TTL = 3 * 3600
POSTS_PER_MINUTE = 20  # per platform


async def record_context(
    client: aredis.Redis, keys: RedisKeys, events: Sequence[CountedEvent]
) -> None:
    """Add newly counted mentions (not bots) to their minute's counts and top posts."""
    pipe = client.pipeline(transaction=False)
    touched: set[str] = set()
    for event in events:
        sample = event.sample
        if sample is None or event.excluded:
            continue
        minute = int(event.ts // 60) * 60
        counts = keys.context_counts(event.brand, minute)
        posts = keys.context_posts(event.brand, minute, sample["platform"])
        for field in count_fields(sample):
            pipe.hincrby(counts, field, 1)
        shown = {k: v for k, v in sample.items() if k != "terms"}
        pipe.zadd(posts, {json.dumps(shown): float(sample["reach"])})
        pipe.zremrangebyrank(posts, 0, -POSTS_PER_MINUTE - 1)
        touched |= {counts, posts}
    for key in touched:
        pipe.expire(key, CONTEXT_TTL)
    if touched:
        await pipe.execute()


__all__ = ["CONTEXT_TTL", "record_context"]
