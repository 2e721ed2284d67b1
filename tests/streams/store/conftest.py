"""Fixtures of the store tests on the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from socialpulse.core.redis_keys import RedisKeys


@pytest.fixture
def scratch(stack: Any) -> Iterator[tuple[RedisKeys, redis.Redis]]:
    """Keys of a prefix of its own on the stack's Redis, and a client; deleted after."""
    keys = RedisKeys(f"tscratch{uuid.uuid4().hex[:10]}")
    # A timeout, so that a test waiting on MONITOR fails rather than hangs.
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True, socket_timeout=10)
    try:
        yield keys, sync
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()
