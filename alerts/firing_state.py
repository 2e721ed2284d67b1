"""Which alerts are firing, in Redis, so that a held condition is notified once.

A claim is ``SET NX``: of several workers evaluating the same rule, exactly one wins and
notifies; the key is deleted when the condition clears, so the next crossing notifies again.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aredis

from streams.redis_counts import RedisKeys

# A claim outlives any sane incident; it only guards against a key left behind forever.
CLAIM_TTL_SECONDS = 7 * 86400


class FiringState:
    """Claims and releases of firing alerts per (rule, brand, platform)."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys):
        self.client = client
        self.keys = keys

    async def claim(self, rule: str, brand: str, platform: str) -> bool:
        """Mark the alert firing; True only for the caller that turned it on."""
        key = self.keys.alert(brand, rule, platform)
        return bool(await self.client.set(key, "1", nx=True, ex=CLAIM_TTL_SECONDS))

    async def release(self, rule: str, brand: str, platforms: Sequence[str]) -> None:
        """Mark the alerts not firing (condition cleared, or the notification must be retried)."""
        if platforms:
            await self.client.delete(*(self.keys.alert(brand, rule, p) for p in platforms))
