"""The detection state in the real Redis: a round's saves and loads of many brands in one round
trip each, atomic per brand; the rule-state exports the evaluator publishes match what a worker
that does not evaluate computes from Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis
import redis.asyncio as aredis

from alerts.detection.configured import detector_for
from alerts.detection.engine import BrandState
from alerts.detection.metrics import RuleStates
from alerts.detection.rule_check import AlertEvent, RuleState
from alerts.detection.store import (
    EVENTS_KEPT,
    STATE_TTL,
    DetectionStore,
    parse_state,
    same_state,
    state_fields,
)
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.exposition import render
from socialpulse.core.redis_keys import RedisKeys
from tests.conftest import write_config

TICK = 1_796_160_000.0


def fired(brand: str) -> AlertEvent:
    return AlertEvent(
        "fired", "negative_mentions_high", "threshold", "critical", brand, "x",
        "mentions_negative", 300, TICK, 9.0, None, None, TICK - 60,
    )  # fmt: skip


def test_many_brands_are_saved_and_loaded_in_one_round_trip_each(
    stack: Settings, run_id: str
) -> None:
    keys = RedisKeys(f"tdet{run_id}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    # 1,000 rule states in one brand: more than one HSET call of the script (400 at a time).
    big = BrandState(cursor=TICK, started=TICK - 86400)
    big.rules = {f"r{i}|x": RuleState(status="pending", since=TICK - i) for i in range(1000)}
    small = BrandState(cursor=TICK, baselines={"mentions|300|x": {"level": 2.0, "updates": 3}})
    # A handed-over backfill the save takes over and removes.
    sync.hset(keys.detection("small"), "backfill:mentions|300|x|17", json.dumps({"level": 2.0}))
    small.backfills = ["backfill:mentions|300|x|17"]

    async def save_and_load() -> tuple[dict[str, BrandState], dict[str, dict[str, str]]]:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            store = DetectionStore(client, keys)
            written = await store.save_all(
                [("big", big, []), ("small", small, [fired("small"), fired("small")])]
            )
            return await store.load_all(["big", "small", "new"]), written
        finally:
            await client.aclose()

    try:
        loaded, written = asyncio.run(save_and_load())
        assert loaded["big"].rules == big.rules and len(loaded["big"].rules) == 1000
        assert (loaded["big"].cursor, loaded["big"].started) == (TICK, TICK - 86400)
        assert loaded["small"].baselines == {"mentions|300|x": {"level": 2.0, "updates": 3}}
        assert loaded["new"] == BrandState()
        assert "backfill:mentions|300|x|17" not in sync.hgetall(keys.detection("small"))
        events = sync.xrange(keys.alert_events("small"))
        assert [json.loads(f["event"]) for _, f in events] == [fired("small").to_dict()] * 2
        assert sync.xlen(keys.alert_events("big")) == 0
        assert 0 < sync.ttl(keys.detection("big")) <= STATE_TTL
        assert 0 < sync.ttl(keys.alert_events("small")) <= STATE_TTL
        assert EVENTS_KEPT == 10_000
        # What was written stands for the stored hash until someone else writes to it.
        stored = sync.hgetall(keys.detection("big"))
        assert same_state(stored, written["big"])
        sync.hset(keys.detection("big"), "backfill:mentions|300|x|99", "{}")
        assert not same_state(sync.hgetall(keys.detection("big")), written["big"])
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


def test_a_field_that_holds_its_value_is_not_sent_again(stack: Settings, run_id: str) -> None:
    keys = RedisKeys(f"tdet{run_id}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    state = BrandState(cursor=TICK, rules={"a|x": RuleState(), "b|x": RuleState()})
    fields = state_fields(state)
    # Redis holds something else for rule a; the round read it as holding the state's value,
    # so the save leaves it (and writes what changed: b and the cursor).
    sync.hset(keys.detection("acme"), mapping={"rule:a|x": "stale", "cursor": "1.0"})
    read = {"rule:a|x": fields["rule:a|x"], "cursor": "1.0"}

    async def save() -> None:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            await DetectionStore(client, keys).save_all([("acme", state, [])], {"acme": read})
        finally:
            await client.aclose()

    try:
        asyncio.run(save())
        assert sync.hgetall(keys.detection("acme")) == {
            "rule:a|x": "stale",
            "rule:b|x": fields["rule:b|x"],
            "cursor": repr(TICK),
        }
    finally:
        sync.delete(keys.detection("acme"))
        sync.close()


def settings_for(tmp_path: Path, run_id: str) -> Settings:
    return load_settings(write_config(tmp_path / "config", run_id, threshold=5))


def test_what_the_evaluator_publishes_is_what_redis_gives_a_worker_that_does_not_evaluate(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = settings_for(tmp_path, run_id)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    sync = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    # One tick of 9 negative mentions on x for every brand: the threshold rule (5) fires.
    states = {}
    for brand in settings.brands.brands:
        state = BrandState()
        rows = {p: {"mentions": 9.0, "mentions_negative": 9.0} for p in brand.platforms}
        values = {w: rows for w in detector.windows()}
        for tick in (TICK, TICK + 10):
            detector.tick(brand.id, tick, brand.platforms, values, state)
        states[brand.id] = state
    for brand, state in states.items():
        sync.hset(keys.detection(brand), mapping=state_fields(state))
    try:
        evaluator = RuleStates(settings, sync, clock=lambda: TICK + 10)
        evaluator.publish({b: s.shown for b, s in states.items() if s.shown is not None})
        published = evaluator().text()
        from_redis = RuleStates(settings, sync, clock=lambda: TICK + 10).refresh().text()
        assert evaluator().text(openmetrics=True) == render(evaluator().families, True)
        assert published == from_redis
        lines = published.splitlines()
        firing = [
            line for line in lines if line.startswith('socialpulse_alert_rule_firing{rule="neg')
        ]
        assert firing == [
            'socialpulse_alert_rule_firing{rule="negative_mentions_high",severity="critical",'
            f'brand="{brand.id}",platform="{platform}"}} 1.0'
            for brand in settings.brands.brands
            for platform in brand.platforms
        ]
        assert (
            'socialpulse_alert_rule_trigger_level{rule="negative_mentions_high",brand="acme",'
            'platform="x",kpi="mentions_negative",window="5m",bound="upper"} 5.0'
        ) in lines
        # A worker that exports some brands computes those only, the same lines.
        some = [b.id for b in settings.brands.brands][1:]
        assert some
        only = RuleStates(settings, sync, lambda: some, clock=lambda: TICK + 10).refresh().text()
        assert only.splitlines() == [
            line
            for line in lines
            if line.startswith("#") or any(f'brand="{b}"' in line for b in some)
        ]
        assert 'brand="acme"' not in only and 'brand="acme"' in published
        # The round trip from Redis parses to the same state the tick left.
        for brand, state in states.items():
            assert parse_state(sync.hgetall(keys.detection(brand))).rules == state.rules
    finally:
        found = list(sync.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            sync.delete(*found)
        sync.close()


def test_the_evaluation_lock_is_held_extended_and_given_back_by_its_owner_only(
    stack: Settings, run_id: str
) -> None:
    keys = RedisKeys(f"tdet{run_id}")
    sync = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)

    async def steps() -> list[bool]:
        client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
        try:
            store = DetectionStore(client, keys)
            return [
                await store.hold_lock("a", 30_000),  # taken
                await store.hold_lock("b", 30_000),  # held by a
                await store.release_lock("b"),  # not b's to give back
                await store.hold_lock("a", 60_000),  # extended
                await store.release_lock("a"),  # given back
                await store.hold_lock("b", 30_000),  # b takes it at once
            ]
        finally:
            await client.aclose()

    try:
        assert asyncio.run(steps()) == [True, False, False, True, True, True]
        assert sync.get(keys.evaluation_lock()) == "b"
        assert 0 < sync.pttl(keys.evaluation_lock()) <= 30_000
    finally:
        sync.delete(keys.evaluation_lock())
        sync.close()
