"""The running totals on /metrics, read from the real Redis: each field of a brand's totals hash
is one counter sample, with exactly its value, whatever the label text."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from socialpulse.app.boards.specs import gauges_read
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.brand_partitions import OwnedBrands, brand_partition
from socialpulse.core.config_types import parse_duration
from socialpulse.core.exposition import Family, number_text, render
from socialpulse.core.redis_keys import RedisKeys
from streams.batch import RawMessage, plan_batch
from streams.counters import ALL_COUNTERS
from streams.metrics import RollingCounts, metric_name
from streams.store.redis_store import AsyncCountStore
from tests.conftest import ROOT, write_config

pytestmark = pytest.mark.stack

HOSTILE = 'x"} 9\n# EOF'


def test_every_total_is_one_exact_sample_and_what_is_not_ours_is_left_out(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = load_settings(write_config(tmp_path, run_id))
    client = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    [acme, *others] = settings.brand_ids
    try:
        client.hincrby(keys.totals(acme), "mentions|x", 201)
        client.hincrby(keys.totals(acme), f"mentions|{HOSTILE}", 3)
        client.hincrbyfloat(keys.totals(acme), "revenue|instagram", 0.1)
        client.hincrbyfloat(keys.totals(acme), "revenue|instagram", 0.2)
        client.hset(keys.totals(acme), mapping={"likes|x": "oops", "bookmarks|x": 4})
        client.hincrby(keys.totals(others[0]), "likes|tiktok", 7)
        text = (
            render(RollingCounts(settings, client)._totals(settings.brand_ids), openmetrics=True)
            + "# EOF\n"
        )
        # Redis adds in long double: 0.1 + 0.2 is "0.3" there, not Python's 0.30000000000000004.
        revenue = client.hget(keys.totals(acme), "revenue|instagram")
    finally:
        client.delete(*(keys.totals(b) for b in settings.brand_ids))
    assert revenue == "0.3"
    samples = {
        (s.name, s.labels["brand"], s.labels["platform"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    counted = {
        ("socialpulse_counted_mentions_total", acme, "x"): 201.0,
        ("socialpulse_counted_mentions_total", acme, HOSTILE): 3.0,
        ("socialpulse_counted_revenue_total", acme, "instagram"): 0.3,
        ("socialpulse_counted_likes_total", others[0], "tiktok"): 7.0,
    }
    # Mentions at 0 on every other configured platform: where a board's windows start.
    zeros = {
        ("socialpulse_counted_mentions_total", b.id, platform): 0.0
        for b in settings.brands.brands
        for platform in b.platforms
        if (b.id, platform) != (acme, "x")
    }
    assert samples == {**counted, **zeros}


def test_numbers_as_redis_returns_them_are_written_as_render_writes_them() -> None:
    assert [number_text(t) for t in ("201", "0", "-3", "2.5", "1e+20", "0.30000000000000004")] == [
        "201.0",
        "0.0",
        "-3.0",
        "2.5",
        "1e+20",
        "0.30000000000000004",
    ]
    assert [number_text(t) for t in ("oops", "", "nan", "inf", "1 2")] == [None] * 5


def test_a_worker_shows_only_the_brands_it_exports_with_rivals_read_for_share_of_voice(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = load_settings(write_config(tmp_path, run_id))
    assert settings.competitors == {"acme": ["globex"]}
    client = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    now = time.time()
    mentions = [("acme", 3), ("globex", 1)]
    try:
        asyncio.run(_count_mentions(stack, settings, keys, mentions, now))
        owned = OwnedBrands(settings.brand_ids)
        owned.assign([brand_partition("acme", 6)], 6)
        assert owned.brands == ("acme",)  # globex is keyed to another partition
        text = render(RollingCounts(settings, client, owned)(), openmetrics=True) + "# EOF\n"
    finally:
        found = list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            client.delete(*found)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert {dict(labels)["brand"] for _, labels in samples} == {"acme"}
    assert (
        samples[("socialpulse_counted_mentions_total", (("brand", "acme"), ("platform", "x")))] == 3
    )
    assert (
        samples[("socialpulse_mentions", (("brand", "acme"), ("platform", "x"), ("window", "5m")))]
        == 3
    )
    # A sum of scores falls with negative mentions: a gauge (a counter that falls is not valid
    # OpenMetrics, which the parser above would have refused).
    score = ("socialpulse_counted_sentiment_score_sum", (("brand", "acme"), ("platform", "x")))
    assert samples[score] == -3.0
    # globex is not shown here, but its mentions still make acme's share of voice: 3 / (3 + 1).
    sov = (
        "socialpulse_share_of_voice_ratio",
        (("brand", "acme"), ("platform", "x"), ("window", "5m")),
    )
    assert samples[sov] == 0.75


async def _count_mentions(
    stack: Settings,
    settings: Settings,
    keys: RedisKeys,
    mentions: list[tuple[str, int]],
    now: float,
) -> None:
    """Count ``n`` negative mentions on x for each (brand, n), as the worker does."""
    events = [
        {
            "id": f"{brand}-{i}",
            "ts": datetime.fromtimestamp(now - 5, UTC).isoformat(),
            "platform": "x",
            "brand": brand,
            "author": f"@a{i}",
            "text": "a post",
            "sentiment": "negative",
        }
        for brand, n in mentions
        for i in range(n)
    ]
    await _count(stack, settings, keys, "mention", events, now)


async def _count(
    stack: Settings,
    settings: Settings,
    keys: RedisKeys,
    kind: str,
    events: list[dict],
    now: float,
) -> None:
    """Count the events (JSON objects of one ``kind``) as the worker does."""
    messages = [
        RawMessage(kind, 0, offset, event["brand"].encode(), json.dumps(event).encode())
        for offset, event in enumerate(events)
    ]
    plan = plan_batch(messages, kind, settings.window_plan, now)  # type: ignore[arg-type]
    assert plan.rejected == [] and plan.too_late == []
    client = aredis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    try:
        store = AsyncCountStore(client, keys, settings.window_plan, 0)
        applied = await store.apply(plan.counted)
    finally:
        await client.aclose()
    assert len(applied.counted) == len(events)


def test_the_boards_gauges_are_the_same_numbers_read_with_only_what_they_need(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = load_settings(write_config(tmp_path, run_id))
    wanted = gauges_read(settings)
    client = redis.Redis.from_url(stack.pipeline.redis.url, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    now = time.time()
    at = datetime.fromtimestamp(now - 5, UTC).isoformat()

    def interaction(i: int, kind: str, **extra: object) -> dict:
        return {"id": f"i{i}", "ts": at, "platform": "x", "brand": "acme", "kind": kind,
                "content_id": "p1", "user_id": f"u{i}", **extra}  # fmt: skip

    try:
        asyncio.run(_count_mentions(stack, settings, keys, [("acme", 3), ("globex", 1)], now))
        interactions = [
            interaction(1, "like"),
            interaction(2, "like"),
            interaction(3, "impression"),
            interaction(4, "followers", value=1000),
        ]
        asyncio.run(_count(stack, settings, keys, "interaction", interactions, now))
        every = _gauges(RollingCounts(settings, client)())
        some = _gauges(RollingCounts(settings, client, gauges=wanted)())
    finally:
        found = list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if found:
            client.delete(*found)
    # Exactly the values the full export has of those gauges: none missing, none other (the
    # care readings have none here: no customer-care messages).
    assert some == {key: n for key, n in every.items() if (key[0], key[3]) in wanted}
    assert {(name, window) for name, _, _, window in some} < wanted
    acme = {(name, window): n for (name, brand, platform, window), n in some.items()
            if brand == "acme" and platform in ("x", "all")}  # fmt: skip
    assert acme[("mentions", 900)] == 3
    assert acme[("negative_share", 900)] == 1.0
    assert acme[("share_of_voice", 3600)] == 0.75  # 3 / (3 + globex's 1)
    assert acme[("followers", 86400)] == 1000
    assert acme[("applause_rate", 3600)] == 2 / 1000
    assert acme[("reach", 3600)] == 1


def _gauges(families: Iterable[Family]) -> dict[tuple[str, str, str, int], float]:
    """Window gauges as (counter or KPI name, brand, platform, window seconds): value."""
    names = {metric_name(c): c for c in ALL_COUNTERS}
    names.update({k.metric_name: k.name for k in load_settings(ROOT / "config").kpis.kpis})
    return {
        (names[f.name], brand, platform, parse_duration(window)): float(n)
        for f in families
        if "window" in f.labels
        for (brand, platform, window), n in f.samples
    }
