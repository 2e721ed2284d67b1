"""A brand's incident round against the real Redis: a surge's firings of several rules are one
incident, and a worse firing at night brings out what quiet hours held, first."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from alerts.detection.rule_check import AlertEvent
from alerts.incidents.oncall import QuietHours
from alerts.incidents.round import IncidentManager
from alerts.incidents.store import IncidentStore
from alerts.notify.slack_message import incident_message
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys
from tests.conftest import write_config

# 23:30 in Berlin (22:30 UTC, in winter): the shipped quiet hours hold warnings.
NIGHT = datetime(2026, 12, 1, 22, 30, tzinfo=UTC).timestamp()


def firing(rule: str, severity: str, at: float, event: str = "fired") -> AlertEvent:
    return AlertEvent(
        event,  # type: ignore[arg-type]
        rule,
        "deviation",
        severity,
        "acme",
        "x",
        "mentions",
        900,
        at,
        900.0,
        300.0,
        12.0,
        at - 60,
    )


def test_a_critical_firing_joins_a_held_warning_and_brings_it_out_first(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    folder = write_config(tmp_path / "config", run_id)
    settings = load_settings(folder)
    # The test config routes everything to one channel and has no quiet hours: put them back.
    quiet = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin", "hold": ["warning"]}
    incidents = settings.alerts.incidents.model_copy(
        update={"quiet_hours": QuietHours.model_validate(quiet)}
    )
    settings = settings.model_copy(
        update={"alerts": settings.alerts.model_copy(update={"incidents": incidents})}
    )
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    k = IncidentKeys(keys, "acme")
    sync = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)

    def add(event: AlertEvent) -> None:
        sync.xadd(keys.alert_events("acme"), {"event": json.dumps(event.to_dict())})

    def outbox() -> list[dict[str, Any]]:
        return [json.loads(f["item"]) for _, f in sync.xrange(k.outbox)]

    async def round_at(now: float) -> None:
        client = aredis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        try:
            manager = IncidentManager(settings, IncidentStore(client, keys), incident_message)
            await manager.round("acme", now)
        finally:
            await client.aclose()

    add(firing("mention_volume_surge", "warning", NIGHT))
    asyncio.run(round_at(NIGHT + 1))
    assert outbox() == []  # the warning's post waits for the morning
    assert sync.zcard(k.held) == 1

    add(firing("mention_volume_drop", "info", NIGHT + 60))  # joins, still held
    add(firing("negative_spike", "critical", NIGHT + 120))  # joins, and it is critical
    asyncio.run(round_at(NIGHT + 121))
    sent = outbox()
    # The held post first (it creates the message the rest updates and replies to), then what
    # was held since, then the rise: all in the one incident acme-1.
    assert [item["kind"] for item in sent] == ["post", "update", "reply", "update", "reply"]
    assert {item["incident"] for item in sent} == {"acme-1"}
    assert sent[-1]["text"].startswith("Severity rose to critical (firing 3): ")
    assert sync.zcard(k.held) == 0
    stored = json.loads(sync.get(k.incident("acme-1")) or "{}")
    assert (stored["severity"], stored["rules"]) == (
        "critical",
        ["mention_volume_surge", "mention_volume_drop", "negative_spike"],
    )
    assert sync.hgetall(k.open) == {"x|" + settings.alerts.slack.channel: "acme-1"}


def test_only_brands_with_something_to_do_are_given_a_round(stack: Settings, run_id: str) -> None:
    keys = RedisKeys(f"t{run_id}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    now = NIGHT
    event = {"event": json.dumps(firing("negative_spike", "critical", now).to_dict())}
    action = {"action": json.dumps({"incident": "b-1", "action": "ack", "who": "U1"})}
    seen = sync.xadd(keys.alert_events("seen"), event)
    sync.hset(IncidentKeys(keys, "seen").cursors, "events", seen)
    sync.xadd(keys.alert_events("new_event"), event)
    sync.hset(IncidentKeys(keys, "new_event").cursors, "events", "1-0")  # before it
    sync.xadd(keys.alert_events("first_event"), event)  # no cursor yet
    done = sync.xadd(IncidentKeys(keys, "acted").actions, action)
    sync.xadd(IncidentKeys(keys, "acted").actions, action)
    sync.hset(IncidentKeys(keys, "acted").cursors, "actions", done)
    old = sync.xadd(IncidentKeys(keys, "acted_before").actions, action)
    sync.hset(IncidentKeys(keys, "acted_before").cursors, "actions", old)
    sync.hset(IncidentKeys(keys, "open").open, "x|#c", "open-1")
    sync.zadd(IncidentKeys(keys, "held_due").held, {"n1": now})
    sync.zadd(IncidentKeys(keys, "held_later").held, {"n2": now + 60})
    sync.xadd(IncidentKeys(keys, "open").outbox, {"item": "{}"})
    sync.xadd(IncidentKeys(keys, "open").outbox, {"item": "{}"})
    brands = ["quiet", "seen", "new_event", "first_event", "acted", "acted_before", "open",
              "held_due", "held_later"]  # fmt: skip

    async def ask() -> tuple[list[str], dict[str, int]]:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            store = IncidentStore(client, keys)
            return await store.with_work(brands, now), await store.outbox_depths(brands)
        finally:
            await client.aclose()

    try:
        due, depths = asyncio.run(ask())
    finally:
        sync.delete(*sync.keys(f"t{run_id}:*"))
    assert due == ["new_event", "first_event", "acted", "open", "held_due"]
    assert depths == {b: 2 if b == "open" else 0 for b in brands}
