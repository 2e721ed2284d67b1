"""Lenient mode's bound (``cleaning.strict: false``): brands and platforms outside brands.yaml
are counted, but at most ``cleaning.max_unknown`` of them at a time, over all workers.

Without a bound, a source sending events for ever new brand ids (a bug, or on purpose) would
add keys to Redis without end, and no board or command shows them. The brands and
brand/platform pairs counted are kept in one sorted set by when they were last seen; one
unseen for a day (the longest window) makes room for another. Events of more are
dead-lettered (``unknown_brand``, ``unknown_platform``) and counted in
``socialpulse_events_untracked_total``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import redis.asyncio as aredis

from socialpulse.core.redis_keys import RedisKeys
from streams.counted import CountedEvent
from streams.decoding import InvalidEvent

FORGET_AFTER = 86400  # seconds unseen before a tracked brand or pair makes room
REFRESH = 60.0  # seconds a worker trusts its own knowledge of what is tracked

# KEYS: the tracked set. ARGV: limit, now, forget before, members. Returns 1/0 per member.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local limit, out = tonumber(ARGV[1]), {}
for i = 4, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) or redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], 2 * 86400)
return out
"""


def untracked_member(event: CountedEvent, known: Mapping[str, frozenset[str]]) -> str | None:
    """What an event outside brands.yaml takes a place for: its brand (unknown brand) or
    ``brand/platform`` (a platform its brand does not list); None for a listed one."""
    if event.brand not in known:
        return event.brand
    if event.platform not in known[event.brand]:
        return f"{event.brand}/{event.platform}"
    return None


class LenientBound:
    """Splits a batch into what lenient mode counts and what is over its bound."""

    def __init__(
        self,
        client: aredis.Redis,
        keys: RedisKeys,
        known: Mapping[str, frozenset[str]],
        limit: int,
    ):
        self.client = client
        self.key = keys.lenient_brands()
        self.known = known
        self.limit = limit
        self._admit = client.register_script(_ADMIT)
        self._checked: dict[str, tuple[bool, float]] = {}  # member -> (admitted, when)

    async def split(
        self, events: Sequence[CountedEvent], now: float | None = None
    ) -> tuple[list[CountedEvent], list[tuple[CountedEvent, InvalidEvent]]]:
        """(events to count, events over the bound with their dead-letter reason)."""
        now = time.time() if now is None else now
        members = [untracked_member(e, self.known) for e in events]
        asked = sorted(
            {
                m
                for m in members
                if m is not None and (m not in self._checked or now - self._checked[m][1] > REFRESH)
            }
        )
        if asked:
            answers = await self._admit(
                keys=[self.key], args=[self.limit, now, now - FORGET_AFTER, *asked]
            )
            if len(self._checked) > 10 * max(self.limit, 100):
                # Bounded: forgetting costs only a round trip (what is asked now is kept).
                self._checked = {m: c for m, c in self._checked.items() if m in members}
            for name, admitted in zip(asked, answers, strict=True):
                self._checked[name] = (bool(int(admitted)), now)
        kept: list[CountedEvent] = []
        over: list[tuple[CountedEvent, InvalidEvent]] = []
        for event, member in zip(events, members, strict=True):
            if member is None or self._checked[member][0]:
                kept.append(event)
                continue
            reason = "unknown_brand" if "/" not in member else "unknown_platform"
            over.append(
                (
                    event,
                    InvalidEvent(
                        reason,
                        f"{member!r} is not in brands.yaml and lenient mode already counts "
                        f"{self.limit} brands and platforms outside it (cleaning.max_unknown); "
                        "add it to brands.yaml, or raise the bound",
                    ),
                )
            )
        return kept, over


__all__ = ["FORGET_AFTER", "LenientBound", "untracked_member"]
