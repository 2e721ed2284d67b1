"""Incidents in Redis: state, timeline, the actions people asked for, and the Slack outbox.

Per brand (one Redis Cluster slot, like its counters):

- ``<prefix>:{<brand>}:incident:<id>``: the incident (JSON); ``...:<id>:timeline``: list of
  entries (JSON), oldest first;
- ``<prefix>:{<brand>}:incidents``: sorted set of ids by opening time; ``...:incidents:open``:
  hash ``<rule>|<platform>`` -> id of the open incident;
- ``<prefix>:{<brand>}:incident-actions``: stream of acknowledge/snooze/resolve requests from
  Slack and the CLI, applied in order by the evaluating worker; results in
  ``...:incident-results`` (hash request id -> "ok" or why it was refused);
- ``<prefix>:{<brand>}:outbox``: stream of Slack notices, delivered in order; ``...:outbox-held``
  (sorted set by release time) holds quiet-hour ones; ``...:outbox-dead``: notices Slack
  refused for good (e.g. channel_not_found), with the reason;
- ``<prefix>:{<brand>}:incident-slack``: hash id -> the message's channel and ts;
- ``<prefix>:{<brand>}:incident-cursors``: the last alert event, action and outbox entry done.

A round's changes (incidents, timeline, index, outbox, cursors) are written in one MULTI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aredis

from alerts.detection.rule_check import AlertEvent
from alerts.incidents.lifecycle import Incident, TimelineEntry
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys

# Timelines, results and finished incidents are kept this long.
KEEP_SECONDS = 90 * 86400


@dataclass
class OutboxItem:
    """One Slack call to make for an incident (rendered when queued)."""

    kind: str  # post, update, reply, ephemeral; message: a channel message of no incident
    incident: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    broadcast: bool = False
    user: str | None = None
    rule: str = ""
    severity: str = ""

    def fields(self) -> dict[Any, Any]:
        """Stream entry fields."""
        return {"item": json.dumps(self.__dict__)}

    @classmethod
    def parse(cls, fields: dict[str, str]) -> OutboxItem:
        """An item from a stream entry."""
        return cls(**json.loads(fields["item"]))


@dataclass
class ActionRequest:
    """Someone asked to act on an incident."""

    incident: str
    action: str  # ack, snooze, resolve
    who: str
    why: str = ""
    snooze_for: int | None = None
    verdict: str = ""  # for action "verdict": useful or not_useful
    reason: str = ""  # ... and for not_useful, optionally a key of VERDICT_REASONS
    request: str = ""  # the stream id, once read

    def fields(self) -> dict[Any, Any]:
        """Stream entry fields."""
        data = {k: v for k, v in self.__dict__.items() if k != "request"}
        return {"action": json.dumps(data)}


@dataclass
class RoundWrite:
    """What one incident round changes for a brand."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    timeline: list[tuple[str, TimelineEntry]] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    held: list[tuple[float, OutboxItem]] = field(default_factory=list)
    release: set[str] = field(default_factory=set)  # incidents whose held notices go out now
    results: dict[str, str] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)


def _stream_id(entry_id: Any) -> tuple[int, int]:
    milliseconds, _, seq = str(entry_id).partition("-")
    return int(milliseconds), int(seq or 0)


def _newer(last: list[Any], done: Any) -> bool:
    # ``last``: XREVRANGE's newest entry (or none); ``done``: the cursor (None before the first).
    if not last:
        return False
    return done is None or _stream_id(last[0][0]) > _stream_id(done)


def verdict_field(incident: Incident) -> str:
    """The verdict index's value for an incident: ``<rule>\t<verdict>\t<reason>``, what
    /metrics counts by (rule names are config names: no tabs)."""
    return f"{incident.rule}\t{incident.verdict}\t{incident.verdict_reason or ''}"


def brand_of(incident_id: str) -> str:
    """Incident ids are ``<brand>-<n>``."""
    return incident_id.rsplit("-", 1)[0]


class IncidentStore:
    """Read and write one Redis's incidents (async)."""

    def __init__(self, client: aredis.Redis, keys: RedisKeys):
        self.client = client
        self.keys = keys

    def of(self, brand: str) -> IncidentKeys:
        """Key names for a brand."""
        return IncidentKeys(self.keys, brand)

    async def new_id(self, brand: str) -> str:
        """The next incident id of a brand, e.g. acme-12."""
        n = await self.client.incr(self.of(brand).seq)
        return f"{brand}-{n}"

    async def open_incidents(self, brand: str) -> dict[str, Incident]:
        """The brand's open incidents by key (``<platform>|<channel>``, Incident.key)."""
        k = self.of(brand)
        ids: Any = await self.client.hgetall(k.open)
        result = {}
        for incident_id in ids.values():
            incident = await self.get(brand, incident_id)
            # Keyed by the incident itself, so one stored under an older key format still joins;
            # two such of one platform and channel: the second stays in by its id (it is still
            # advanced in time and its rules' clearings still reach it).
            if incident is not None and incident.open:
                result[incident.id if incident.key in result else incident.key] = incident
        return result

    async def get(self, brand: str, incident_id: str) -> Incident | None:
        """One incident, or None."""
        raw: Any = await self.client.get(self.of(brand).incident(incident_id))
        return Incident.from_dict(json.loads(raw)) if raw else None

    async def timeline(self, brand: str, incident_id: str) -> list[TimelineEntry]:
        """The incident's timeline, oldest first."""
        raw: Any = await self.client.lrange(self.of(brand).timeline(incident_id), 0, -1)
        return [TimelineEntry(**json.loads(entry)) for entry in raw]

    async def recent(self, brand: str, limit: int = 50) -> list[Incident]:
        """The brand's newest incidents, newest first."""
        ids: Any = await self.client.zrevrange(self.of(brand).index, 0, limit - 1)
        found = [await self.get(brand, i) for i in ids]
        return [i for i in found if i is not None]

    async def with_work(self, brands: Sequence[str], now: float) -> list[str]:
        """Of ``brands``, those whose incident round has anything to do at ``now``: alert events
        or actions after its cursors, open incidents (time passes for them), quiet-hour
        notices due. The round of any other brand reads six keys and changes nothing; at
        1,000 brands, every second, those reads were most of the evaluator's time. One round
        trip for all brands."""
        pipe = self.client.pipeline(transaction=False)
        for brand in brands:
            k = self.of(brand)
            pipe.hmget(k.cursors, ["events", "actions"])
            pipe.xrevrange(self.keys.alert_events(brand), count=1)
            pipe.xrevrange(k.actions, count=1)
            pipe.hlen(k.open)
            pipe.zcount(k.held, "-inf", now)
        replies: list[Any] = await pipe.execute()
        due = []
        for n, brand in enumerate(brands):
            done, events, actions, open_now, held = replies[5 * n : 5 * n + 5]
            events_done, actions_done = done
            if open_now or held or _newer(events, events_done) or _newer(actions, actions_done):
                due.append(brand)
        return due

    async def outbox_depths(self, brands: Sequence[str]) -> dict[str, int]:
        """Notices waiting in each brand's outbox, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for brand in brands:
            pipe.xlen(self.of(brand).outbox)
        replies: list[Any] = await pipe.execute()
        return {brand: int(n) for brand, n in zip(brands, replies, strict=True)}

    async def cursors(self, brand: str) -> dict[str, str]:
        """Last alert event (events), action (actions) and outbox entry (outbox) done."""
        raw: Any = await self.client.hgetall(self.of(brand).cursors)
        return dict(raw)

    async def alert_events_after(
        self, brand: str, after: str | None
    ) -> list[tuple[str, AlertEvent]]:
        """Alert events (from alerts.detection.store) after the cursor (all of them without
        one), oldest first."""
        start = f"({after}" if after else "-"
        entries: Any = await self.client.xrange(self.keys.alert_events(brand), min=start)
        return [(str(i), AlertEvent.from_dict(json.loads(f["event"]))) for i, f in entries]

    async def request(self, brand: str, action: ActionRequest) -> str:
        """Queue an action; return its request id."""
        return str(await self.client.xadd(self.of(brand).actions, action.fields()))

    async def actions_after(self, brand: str, after: str | None) -> list[ActionRequest]:
        """Queued actions after the cursor, oldest first."""
        start = f"({after}" if after else "-"
        entries: Any = await self.client.xrange(self.of(brand).actions, min=start)
        found = []
        for entry_id, fields in entries:
            action = ActionRequest(**json.loads(fields["action"]))
            action.request = str(entry_id)
            found.append(action)
        return found

    async def result(self, brand: str, request: str) -> str | None:
        """What became of an action request: "ok", the refusal, or None while pending."""
        raw: Any = await self.client.hget(self.of(brand).results, request)
        return str(raw) if raw is not None else None

    async def release_held(self, brand: str, now: float) -> None:
        """Move quiet-hour notices whose time has come to the outbox, in order."""
        k = self.of(brand)
        due: Any = await self.client.zrangebyscore(k.held, "-inf", now)
        if not due:
            return
        pipe = self.client.pipeline(transaction=True)
        for raw in due:
            pipe.xadd(k.outbox, {"item": json.loads(raw)["item"]})
        pipe.zrem(k.held, *due)
        await pipe.execute()

    async def save(self, brand: str, write: RoundWrite) -> None:
        """Write a round's changes atomically."""
        k = self.of(brand)
        released: list[Any] = []
        if write.release:
            waiting: Any = await self.client.zrange(k.held, 0, -1)
            released = [
                raw
                for raw in waiting
                if json.loads(json.loads(raw)["item"])["incident"] in write.release
            ]
        # The open index as it stands (only the evaluating worker writes it: read, then write).
        indexed: Any = {}
        if any(not i.open for i in write.incidents.values()):
            indexed = await self.client.hgetall(k.open)
        judged = {i.id: i for i in write.incidents.values() if i.verdict is not None}
        dropped: Any = []
        if judged:  # verdicts on incidents older than the incidents themselves are dropped
            dropped = await self.client.zrangebyscore(
                k.verdicts, "-inf", f"({time.time() - KEEP_SECONDS}"
            )
        pipe = self.client.pipeline(transaction=True)
        # Notices of an incident no longer held go out first, in the order they were queued (the
        # stored ones of earlier rounds before this round's).
        for raw in released:
            pipe.xadd(k.outbox, {"item": json.loads(raw)["item"]})
        if released:
            pipe.zrem(k.held, *released)
        for incident in write.incidents.values():
            pipe.set(k.incident(incident.id), json.dumps(incident.to_dict()), ex=KEEP_SECONDS)
            pipe.zadd(k.index, {incident.id: incident.opened_at})
            if incident.open:
                pipe.hset(k.open, incident.key, incident.id)
            else:
                # Only its own fields: a resolved incident is saved again (a verdict, a refused
                # click) when a newer one of its platform and channel holds the field. Also the
                # field of the key format before incidents joined across rules.
                mine = [
                    f
                    for f in (incident.key, f"{incident.rule}|{incident.platform}")
                    if indexed.get(f) == incident.id
                ]
                if mine:
                    pipe.hdel(k.open, *mine)
        if dropped:
            pipe.zrem(k.verdicts, *dropped)
            pipe.hdel(k.verdict_of, *dropped)
        if judged:
            pipe.zadd(k.verdicts, {i.id: i.opened_at for i in judged.values()})
            pipe.hset(
                k.verdict_of,
                mapping={i.id: verdict_field(i) for i in judged.values()},
            )
        for incident_id, entry in write.timeline:
            pipe.rpush(k.timeline(incident_id), json.dumps(entry.to_dict()))
            pipe.expire(k.timeline(incident_id), KEEP_SECONDS)
        for item in write.outbox:
            pipe.xadd(k.outbox, item.fields())
        for seq, (release, item) in enumerate(write.held):
            # Members sort by their first key when released together: queue order.
            order = f"{time.time_ns():020d}-{seq:06d}"
            member = json.dumps({"order": order, "item": item.fields()["item"]})
            pipe.zadd(k.held, {member: release})
        if write.results:
            pipe.hset(k.results, mapping=cast(dict[Any, Any], write.results))
            pipe.expire(k.results, KEEP_SECONDS)
        if write.cursors:
            pipe.hset(k.cursors, mapping=cast(dict[Any, Any], write.cursors))
        await pipe.execute()


__all__ = [
    "ActionRequest",
    "IncidentStore",
    "OutboxItem",
    "RoundWrite",
    "brand_of",
    "verdict_field",
]
