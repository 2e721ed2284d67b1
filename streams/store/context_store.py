"""Keeps what incidents show as their cause in Redis: per brand and event-time minute, the
term and language counts and the top posts by reach of each platform (streams.post_context).
Kept for ``CONTEXT_TTL``: an incident looks back at most an hour, against the hour before."""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis

from socialpulse.core.connections import queue_script
from socialpulse.core.redis_keys import RedisKeys
from streams.counted import CountedEvent
from streams.post_context import count_fields

CONTEXT_TTL = 3 * 3600
POSTS_PER_MINUTE = 20  # per platform
# One call a minute's hash instead of one HINCRBY a field: a batch adds to hundreds of term
# fields, and redis-py's cost is mostly per command packed.
_ADD_COUNTS = """
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


async def record_context(
    client: aredis.Redis, keys: RedisKeys, events: Sequence[CountedEvent]
) -> None:
    """Add newly counted mentions (not bots) to their minute's counts and top posts: summed
    here first, so a batch costs one script call per minute's counts and one ZADD per key."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    posts: dict[str, list[tuple[float, int, dict[str, Any]]]] = defaultdict(list)
    for event in events:
        sample = event.sample
        if sample is None or event.excluded:
            continue
        minute = int(event.ts // 60) * 60
        counts[keys.context_counts(event.brand, minute)].update(count_fields(sample))
        key = keys.context_posts(event.brand, minute, sample["platform"])
        posts[key].append((float(sample["reach"]), len(posts[key]), sample))
    if not counts:
        return
    pipe = client.pipeline(transaction=False)
    add_counts = client.register_script(_ADD_COUNTS)
    for key, fields in counts.items():
        args: list[str | int] = [CONTEXT_TTL]
        for field, n in fields.items():
            args += (field, n)
        await queue_script(add_counts, pipe, [key], args)
    for key, candidates in posts.items():
        best = heapq.nlargest(POSTS_PER_MINUTE, candidates)  # only these can make the top
        shown = {
            json.dumps({k: v for k, v in sample.items() if k != "terms"}): reach
            for reach, _, sample in best
        }
        pipe.zadd(key, shown)
        pipe.zremrangebyrank(key, 0, -POSTS_PER_MINUTE - 1)
        pipe.expire(key, CONTEXT_TTL)
    await pipe.execute()


__all__ = ["CONTEXT_TTL", "record_context"]
