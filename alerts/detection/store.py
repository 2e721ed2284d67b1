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

A round's new state and its events are written in one MULTI, so a crash leaves either both or
neither: the next round re-evaluates the same ticks from the same state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis

from alerts.detection.calibration import Calibration
from alerts.detection.engine import BrandState
from alerts.detection.rule_check import AlertEvent, RuleState
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


class DetectionStore:
    """Load and save brands' detection state; read and mark alert events."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys):
        self.client = client
        self.keys = keys

    async def hold_lock(self, owner: str, ttl_ms: int) -> bool:
        """Take or keep the evaluation lock; True when ``owner`` holds it for ``ttl_ms`` more."""
        lock = self.keys.evaluation_lock()
        if await self.client.set(lock, owner, nx=True, px=ttl_ms):
            return True
        return bool(await self.client.eval(_EXTEND, 1, lock, owner, ttl_ms))

    async def load(self, brand: str) -> BrandState:
        """The brand's stored state (empty for a new brand)."""
        fields: Any = await self.client.hgetall(self.keys.detection(brand))
        return parse_state(fields)

    async def save(self, brand: str, state: BrandState, events: Sequence[AlertEvent]) -> None:
        """Write the state and append the events, atomically."""
        pipe = self.client.pipeline(transaction=True)
        fields: dict[Any, Any] = state_fields(state)
        pipe.hset(self.keys.detection(brand), mapping=fields)
        if state.backfills:
            pipe.hdel(self.keys.detection(brand), *state.backfills)
        for event in events:
            pipe.xadd(
                self.keys.alert_events(brand),
                {"event": json.dumps(event.to_dict())},
                maxlen=EVENTS_KEPT,
                approximate=True,
            )
        pipe.expire(self.keys.detection(brand), STATE_TTL)
        pipe.expire(self.keys.alert_events(brand), STATE_TTL)
        await pipe.execute()


def parse_state(fields: dict[str, str]) -> BrandState:
    """A BrandState from the detection hash's fields."""
    state = BrandState()
    for name, raw in fields.items():
        if name.startswith("rule:"):
            state.rules[name.removeprefix("rule:")] = RuleState.from_dict(json.loads(raw))
        elif name.startswith("baseline:"):
            state.baselines[name.removeprefix("baseline:")] = json.loads(raw)
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


def state_fields(state: BrandState) -> dict[str, str]:
    """The detection hash's fields for a BrandState."""
    fields = {f"rule:{k}": json.dumps(v.to_dict()) for k, v in state.rules.items()}
    fields |= {f"baseline:{k}": json.dumps(v) for k, v in state.baseline_states().items()}
    if state.cursor is not None:
        fields["cursor"] = repr(state.cursor)
    if state.started is not None:
        fields["started"] = repr(state.started)
    return fields
