"""The long view on the real stack: a real worker counts orders, spend and content costs, the
hour is rolled into its day, and `socialpulse report` gives the day, the campaign and each
content item's ROI exactly, against the day before."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import RedisKeys
from streams.store.day_rollups import DAY, SETTLE, DayRollups, day_start
from tests.conftest import run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import produce
from tests.e2e.helpers.reading import wait_until


def interaction(
    kind: str, value: float | None, content: str, campaign: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"i-{uuid.uuid4().hex}",
        "ts": datetime.now(UTC).isoformat(),
        "platform": "instagram",
        "brand": "acme",
        "kind": kind,
        "content_id": content,
        "user_id": "u-1",
    }
    if value is not None:
        event["value"] = value
    if campaign:
        event["campaign"] = campaign
    return event


def report(settings: Settings, *options: str) -> dict[str, Any]:
    done = run_cli(settings, "report", "--brand", "acme", "--format", "json", *options)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_day_a_campaign_and_each_content_item_exactly_against_the_day_before(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = load_settings(write_config(tmp_path / "config", run_id))
    events = [
        interaction("order", 19.99, "reel-1", "spring"),
        interaction("order", 0.01, "reel-1", "spring"),
        interaction("order", 50.0, "post-2", None),
        interaction("spend", 10.0, "reel-1", "spring"),
        interaction("content_cost", 8.0, "reel-1", "spring"),
        interaction("content_cost", 100.0, "post-2", None),
        interaction("like", None, "reel-1", "spring"),
    ]
    # The events' own time (not the clock at each step): a run across midnight stays right.
    counted_at = datetime.fromisoformat(events[0]["ts"]).timestamp()
    today = day_start(counted_at)
    worker = start_worker(settings.config_dir, tmp_path / "worker.log")
    try:
        produce(settings, settings.pipeline.topics.interactions, events)
        client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        keys = RedisKeys(settings.pipeline.redis.key_prefix)
        wait_until(
            lambda: client.hget(keys.totals("acme"), "production_cost|instagram") == "108",
            timeout=60,
            what="the worker to count the events",
        )
    finally:
        stop_worker(worker)
    # The day before, as its rollup would have it: 40 of revenue, 20 of spend.
    client.hset(
        keys.day("acme", today - DAY),
        mapping={"revenue|instagram": 40, "orders|instagram": 2, "spend|instagram": 20},
    )
    client.hset(
        keys.dimension_day("acme", today - DAY), mapping={"revenue|campaign:spring": "12.5"}
    )

    async def roll() -> int:
        live = aredis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        try:
            rollups = DayRollups(live, keys, settings.window_plan, 400)
            hour = int(counted_at // 3600) * 3600
            return await rollups.roll(["acme"], hour + 3600 + 600 + SETTLE + 1)
        finally:
            await live.aclose()

    assert asyncio.run(roll()) >= 1
    day = datetime.fromtimestamp(today, UTC).date().isoformat()
    whole = report(settings, "--from", day, "--to", day)
    rows = whole["rows"]
    assert {
        k: rows[k]["current"] for k in ("orders", "revenue", "spend", "production_cost", "likes")
    } == {"orders": 3.0, "revenue": 70.0, "spend": 10.0, "production_cost": 108.0, "likes": 1.0}
    assert rows["revenue"]["previous"] == 40.0 and rows["revenue"]["change"] == 0.75
    assert (
        rows["roi"]["current"] == 6.0 and rows["roi"]["previous"] == 1.0
    )  # (70-10)/10, (40-20)/20
    assert rows["content_roi"]["current"] == (70 - 108) / 108
    # The campaign over its own days (from its first count, the day before, to its last) ...
    whole_campaign = report(settings, "--campaign", "spring")
    yesterday = datetime.fromtimestamp(today - DAY, UTC).date().isoformat()
    assert whole_campaign["span"]["label"] == f"campaign spring, {yesterday}..{day}"
    assert whole_campaign["rows"]["revenue"]["current"] == 32.5
    # ... or over chosen days, against the days before.
    spring = report(settings, "--campaign", "spring", "--from", day, "--to", day)["rows"]
    assert {k: spring[k]["current"] for k in ("orders", "revenue", "spend", "production_cost")} == {
        "orders": 2.0,
        "revenue": 20.0,
        "spend": 10.0,
        "production_cost": 8.0,
    }
    assert spring["content_roi"]["current"] == 1.5  # (20 - 8) / 8
    assert spring["revenue"]["previous"] == 12.5  # the campaign's day before
    items = report(settings, "--from", day, "--to", day, "--by", "content")["rows"]
    assert items["reel-1 content_roi"]["current"] == 1.5
    assert items["post-2 content_roi"]["current"] == -0.5  # (50 - 100) / 100
    table = run_cli(settings, "report", "--brand", "acme", "--from", day, "--to", day)
    assert table.stdout.splitlines()[0] == f"acme, all platforms, {day}..{day} against " + (
        datetime.fromtimestamp(today - DAY, UTC).date().isoformat()
        + ".."
        + datetime.fromtimestamp(today - DAY, UTC).date().isoformat()
    )
    assert [
        line.split()[:2] for line in table.stdout.splitlines() if line.startswith("revenue")
    ] == [["revenue", "70"]]
    # Bad input: exit 2 and what to give.
    for options, message in (
        (["--period", "Nov"], "--period 'Nov' is not a month: give it as 2026-11"),
        (["--brand", "nope", "--period", "2026-11"], "--brand 'nope' is not in brands.yaml"),
        (["--from", day], "--from and --to go together"),
        (["--campaign", "autumn"], "campaign 'autumn' of acme has no count in the last 400 days"),
        ([], "give one of --period 2026-11, --quarter 2026-Q4, --from D --to D, or --campaign C"),
    ):
        args = ["report", *([] if "--brand" in options else ["--brand", "acme"]), *options]
        done = run_cli(settings, *args)
        assert (done.returncode, message in done.stderr) == (2, True), done.stderr
