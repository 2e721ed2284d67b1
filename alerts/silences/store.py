"""Silences in Redis, shared by every worker and the CLI (one hash of all silences, their id
counter and which were told of their end, under one hash tag; socialpulse.core.redis_keys).

Made from Slack or the CLI, they are written here and read by the evaluating worker every
round, so a silence holds from the next second on whichever worker evaluates. Recurring
silences from alerts.yaml are not stored; one expired early is, under its occurrence's id, and
that stored copy takes its place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis

from alerts.silences.config import SilenceSettings
from alerts.silences.model import Silence, SilenceError
from socialpulse.core.redis_keys import RedisKeys

# Ended silences are kept this long (listed with --all, read by the weekly summary), then
# dropped when a round finds them.
KEEP_SECONDS = 35 * 86400


class SilenceStore:
    """Read and write silences (synchronous client: the endpoint's threads, the CLI and the
    evaluator's worker thread)."""

    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self.client = client
        self.keys = keys

    def add(self, silence: Silence) -> Silence:
        """Store a checked silence (alerts.silences.model.new_silence) under a new id
        (``s-<n>``, one more than the last made); return it with its id."""
        number = int(self.client.incr(self.keys.silence_seq()))
        made = replace(silence, id=f"s-{number}")
        self.client.hset(self.keys.silences(), made.id, made.to_json())
        return made

    def stored(self) -> list[Silence]:
        """Every stored silence (made by people, and recurring ones expired early)."""
        raw: Any = self.client.hgetall(self.keys.silences())
        return [Silence.from_json(value) for value in raw.values()]

    def current(self, settings: SilenceSettings, now: float) -> list[Silence]:
        """The stored silences and the recurring ones (active now or within a week), a stored
        copy of a recurring occurrence in its place."""
        stored = {s.id: s for s in self.stored()}
        declared = [stored.pop(s.id, s) for s in settings.declared(now)]
        return sorted([*stored.values(), *declared], key=lambda s: (s.starts_at, s.id))

    def expire(self, silence_id: str, who: str, now: float, settings: SilenceSettings) -> Silence:
        """End a silence early (a recurring occurrence: just that one). SilenceError when there
        is no such silence or it has ended. Exact under concurrent expiries: one wins, the
        other is told it has ended."""
        key = self.keys.silences()
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw: Any = pipe.hget(key, silence_id)
                    if raw is not None:
                        silence = Silence.from_json(raw)
                    else:
                        declared = {s.id: s for s in settings.declared(now)}
                        if silence_id not in declared:
                            raise SilenceError(
                                f"no silence {silence_id!r}; `socialpulse silences list` shows them"
                            )
                        silence = declared[silence_id]
                    ended = silence.expire(who, now)
                    pipe.multi()
                    pipe.hset(key, silence_id, ended.to_json())
                    pipe.execute()
                    return ended
                except redis.WatchError:
                    continue

    def mark_told(self, silence_id: str, now: float) -> bool:
        """Mark the silence's end as told; False when it already was (told once, whichever
        worker or round gets here first)."""
        return bool(self.client.hsetnx(self.keys.silence_notices(), silence_id, str(now)))

    def prune(self, now: float) -> int:
        """Drop silences that ended more than KEEP_SECONDS ago, and notice marks as old (the
        recurring silences' occurrences leave one a week)."""
        cutoff = now - KEEP_SECONDS
        old = [s.id for s in self.stored() if s.end < cutoff]
        told: Any = self.client.hgetall(self.keys.silence_notices())
        stale = [i for i, at in told.items() if i in old or float(at) < cutoff]
        if old or stale:
            pipe = self.client.pipeline(transaction=True)
            if old:
                pipe.hdel(self.keys.silences(), *old)
            if stale:
                pipe.hdel(self.keys.silence_notices(), *stale)
            pipe.execute()
        return len(old)


__all__ = ["KEEP_SECONDS", "SilenceStore"]
