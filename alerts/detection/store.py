"""Detection state in Redis: baselines and rule states survive restarts, events are a stream.

Per brand (one Redis Cluster slot, like its counters):

- ``<prefix>:{<brand>}:detection``: hash with ``cursor`` (last tick evaluated), ``started``,
  ``delivered`` (before incidents: the last event posted to Slack), ``rule:<rule>|<platform>`` and
  ``baseline:<kpi>|<window>|<platform>`` (JSON), and
  ``backfill:<kpi>|<window>|<platform>|<ms>``: a baseline learned from history by
  ``socialpulse baseline backfill``, handed over to the evaluating worker (which holds the
  evaluation lock for as long as it runs): the next round takes the newest one as the baseline
  and removes it; ``backfill-calibration:<rule>|<platform>|<ms>``: likewise a calibrated rule's
  surge history learned from an export of events;
- ``<prefix>:{<brand>}:alert-events``: stream of firings and clearings (``event`` = JSON), which
  the incident layer consumes.

A brand's new state and its events are written by one script call, so a crash leaves either both
or neither: the next round re-evaluates the same ticks from the same state. A round loads every
brand's state in one round trip and saves them in another (a script call per brand, so each stays
atomic and in its own slot): at 1,000 brands, a round trip per brand was most of a round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aredis

from alerts.detection.calibration import Calibration
from alerts.detection.engine import BrandState
from alerts.detection.rule_check import AlertEvent, RuleState
from socialpulse.core.connections import queue_script
from socialpulse.core.redis_keys import RedisKeys

CALIBRATION_BACKFILL = "backfill-calibration:"
# Events kept per brand (approximate trim): weeks of alerts, bounded memory.
EVENTS_KEPT = 10_000
# A brand no worker has evaluated for this long (removed from brands.yaml) is forgotten.
STATE_TTL = 90 * 86400
# Extends the lock only if this worker holds it.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Gives the lock back only if this worker holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# KEYS: the detection hash, the events stream. ARGV: TTL, events kept, the number of fields to
# set, their names and values, the number of fields to delete, their names, then the events.
_SAVE = """
local ttl, kept, at = ARGV[1], ARGV[2], 4
local pairs = tonumber(ARGV[3])
for first = at, at + 2 * pairs - 1, 400 do  -- unpack() is bounded by Lua's stack
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + 399, at + 2 * pairs - 1)))
end
at = at + 2 * pairs
local gone = tonumber(ARGV[at])
at = at + 1
for first = at, at + gone - 1, 400 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, first, math.min(first + 399, at + gone - 1)))
end
for i = at + gone, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', kept, '*', 'event', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""


class DetectionStore:
    """Load and save brands' detection state; read and mark alert events."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys):
        self.client = client
        self.keys = keys
        self._save = client.register_script(_SAVE)

    async def hold_lock(self, owner: str, ttl_ms: int) -> bool:
        """Take or keep the evaluation lock; True when ``owner`` holds it for ``ttl_ms`` more."""
        lock = self.keys.evaluation_lock()
        if await self.client.set(lock, owner, nx=True, px=ttl_ms):
            return True
        return bool(await self.client.eval(_EXTEND, 1, lock, owner, ttl_ms))

    async def release_lock(self, owner: str) -> bool:
        """Give the evaluation lock back (at a graceful stop: another worker takes over at its
        next round, not when the lock expires); True when ``owner`` held it."""
        lock = self.keys.evaluation_lock()
        return bool(await self.client.eval(_RELEASE, 1, lock, owner))

    async def load(self, brand: str) -> BrandState:
        """The brand's stored state (empty for a new brand)."""
        return (await self.load_all([brand]))[brand]

    async def load_all(self, brands: Sequence[str]) -> dict[str, BrandState]:
        """Each brand's stored state, in one round trip."""
        raw = await self.load_fields(brands)
        return {brand: parse_state(fields) for brand, fields in raw.items()}

    async def load_fields(self, brands: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each brand's detection hash as stored, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for brand in brands:
            pipe.hgetall(self.keys.detection(brand))
        replies: list[Any] = await pipe.execute()
        return {brand: dict(fields or {}) for brand, fields in zip(brands, replies, strict=True)}

    async def save(self, brand: str, state: BrandState, events: Sequence[AlertEvent]) -> None:
        """Write the state and append the events, atomically."""
        await self.save_all([(brand, state, events)])

    async def save_all(
        self,
        saves: Sequence[tuple[str, BrandState, Sequence[AlertEvent]]],
        stored: Mapping[str, Mapping[str, str]] | None = None,
    ) -> dict[str, dict[str, str]]:
        """Write each brand's state and append its events (atomically per brand), in one round
        trip; returns the state's fields per brand. ``stored``: the hashes as read this round;
        a field that holds its value already is not sent (most baselines learn every 5
        minutes, not every tick)."""
        written: dict[str, dict[str, str]] = {}
        if not saves:
            return written
        pipe = self.client.pipeline(transaction=False)
        for brand, state, events in saves:
            fields = written[brand] = state_fields(state)
            before = (stored or {}).get(brand, {})
            changed = [(k, v) for k, v in fields.items() if before.get(k) != v]
            args: list[Any] = [STATE_TTL, EVENTS_KEPT, len(changed)]
            for name, value in changed:
                args += (name, value)
            args += (len(state.backfills), *state.backfills)
            args += (json.dumps(e.to_dict()) for e in events)
            keys = [self.keys.detection(brand), self.keys.alert_events(brand)]
            await queue_script(self._save, pipe, keys, args)
        await pipe.execute()
        return written


def same_state(stored: dict[str, str], written: dict[str, str]) -> bool:
    """Whether a detection hash as read holds just what a save wrote (nothing handed over or
    changed since), so the state it was written from stands for it."""
    kept = ("rule:", "baseline:", "backfill:", CALIBRATION_BACKFILL, "cursor", "started")
    return {k: v for k, v in stored.items() if k.startswith(kept)} == written


def parse_state(fields: Mapping[str, str]) -> BrandState:
    """A BrandState from the detection hash's fields."""
    state = BrandState()
    for name, raw in fields.items():
        if name.startswith("rule:"):
            state.rules[name.removeprefix("rule:")] = RuleState.from_dict(json.loads(raw))
        elif name.startswith("baseline:"):
            key = name.removeprefix("baseline:")
            state.baselines[key] = data = json.loads(raw)
            state.encoded[key] = (_version(data), raw)
    # Backfills in the order they were written (<ms> suffix): the newest wins.
    backfills = sorted(
        (name for name in fields if name.startswith(("backfill:", CALIBRATION_BACKFILL))),
        key=lambda name: int(name.rsplit("|", 1)[1]),
    )
    for name in backfills:
        if name.startswith(CALIBRATION_BACKFILL):
            key = name.removeprefix(CALIBRATION_BACKFILL).rsplit("|", 1)[0]
            rule = state.rules.setdefault(key, RuleState())
            rule.calibration = Calibration.from_dict(json.loads(fields[name]))
            continue
        key = name.removeprefix("backfill:").rsplit("|", 1)[0]
        state.baselines[key] = json.loads(fields[name])
        state.encoded.pop(key, None)
    state.backfills = backfills
    state.cursor = float(fields["cursor"]) if "cursor" in fields else None
    state.started = float(fields["started"]) if "started" in fields else None
    return state


def backfill_field(key: str, written_ms: int) -> str:
    """The hash field of a backfilled baseline, newest (largest ``written_ms``) first taken."""
    return f"backfill:{key}|{written_ms}"


def calibration_backfill_field(rule_key: str, written_ms: int) -> str:
    """The hash field of a calibrated rule's surge history learned from an export
    (``<rule>|<platform>``), handed over like a backfilled baseline."""
    return f"{CALIBRATION_BACKFILL}{rule_key}|{written_ms}"


def _version(baseline: Mapping[str, Any]) -> tuple[Any, Any]:
    # A baseline changes only when it learns a sample, which counts `updates`.
    return baseline.get("updates"), baseline.get("last_update")


def state_fields(state: BrandState) -> dict[str, str]:
    """The detection hash's fields for a BrandState (a baseline that learned nothing since it
    was encoded is not encoded again)."""
    # orjson: encoding every rule state and baseline with json was a tenth of an evaluation
    # round at many brands, and the first round of a deployment encodes every baseline (a
    # state's numbers are finite: KPI formulas give no value rather than inf or NaN).
    fields = {f"rule:{k}": orjson.dumps(v.to_dict()).decode() for k, v in state.rules.items()}
    for key in dict.fromkeys([*state.baselines, *state.live]):
        live = state.live.get(key)
        version = (live.updates, live.last_update) if live else _version(state.baselines[key])
        known = state.encoded.get(key)
        if known is None or known[0] != version:
            data = live.to_dict() if live else state.baselines[key]
            known = state.encoded[key] = (version, orjson.dumps(data).decode())
        fields[f"baseline:{key}"] = known[1]
    if state.cursor is not None:
        fields["cursor"] = repr(state.cursor)
    if state.started is not None:
        fields["started"] = repr(state.started)
    return fields
