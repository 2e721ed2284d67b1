"""The running totals on /metrics, read from the real Redis: each field of a brand's totals hash
is one counter sample, with exactly its value, whatever the label text."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.exposition import number_text, render
from socialpulse.core.redis_keys import RedisKeys
from streams.metrics import RollingCounts
from tests.conftest import write_config

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
        text = render(RollingCounts(settings, client)._totals(), openmetrics=True) + "# EOF\n"
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
    assert samples == {
        ("socialpulse_counted_mentions_total", acme, "x"): 201.0,
        ("socialpulse_counted_mentions_total", acme, HOSTILE): 3.0,
        ("socialpulse_counted_revenue_total", acme, "instagram"): 0.3,
        ("socialpulse_counted_likes_total", others[0], "tiktok"): 7.0,
    }


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
