"""End to end on the real stack: Kafka -> Faust worker -> Redis -> /metrics -> Prometheus -> Slack.

Given a known set of events, the rolling counts in Redis, on /metrics and in Prometheus are
exactly what they must be; malformed messages are dead-lettered with their reason while the
worker goes on; a negative burst posts exactly one Slack message.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kafka import KafkaConsumer

from alerts.detection.targets import day_start
from socialpulse.app.allocator import jemalloc_library
from socialpulse.app.boards.from_totals import RUNNING_TOTALS, total_name
from socialpulse.app.boards.model import Catalog
from socialpulse.app.boards.preview import substitute
from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.scrape_targets import gateway_targets_dir
from streams.store.redis_store import read_windows
from tests.conftest import ROOT, backfill_mentions_baseline, free_port, run_cli
from tests.e2e.helpers.events import interaction, mention, produce
from tests.e2e.helpers.gateway import Gateway, start_gateway
from tests.e2e.helpers.reading import (
    Sample,
    dead_letters,
    kpi,
    kpis_report,
    metric_names,
    metrics,
    prometheus_query,
    stub_messages,
    ticks_after,
    value,
    wait_until,
)


def test_known_events_give_exact_counts_in_redis_and_metrics(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    # acme: 10 mentions on x (4 negative: 2 by upstream label, 2 scored by VADER), 3 on instagram.
    mentions = (
        [mention("acme", "x", "whatever", "positive") for _ in range(3)]
        + [mention("acme", "x", "meh", "neutral") for _ in range(3)]
        + [mention("acme", "x", "I love it", "negative") for _ in range(2)]  # upstream wins
        + [mention("acme", "x", "Terrible service, I hate this") for _ in range(2)]
        + [mention("acme", "instagram", "Absolutely love this, great job!") for _ in range(3)]
    )
    # Fixed names keep the distinct counts (HyperLogLog estimates) deterministic; 13 authors,
    # 2 of whom post on both platforms, with follower counts for potential reach.
    for n, event in enumerate(mentions):
        event["author"] = f"@fan{n % 11}"
        event["author_followers"] = 100 * (n + 1)
    interactions = (
        [interaction("acme", "instagram", "like") for _ in range(7)]
        + [interaction("acme", "instagram", "share") for _ in range(3)]
        + [interaction("acme", "x", "impression") for _ in range(5)]
    )
    for n, event in enumerate(interactions[-5:]):
        event["user_id"] = f"viewer{n % 4}"  # 5 impressions by 4 viewers
    produce(settings, topics.mentions, mentions)
    produce(settings, topics.interactions, interactions)
    # Redeliveries of already-sent events (same ids) must change nothing.
    produce(settings, topics.mentions, mentions[:3])
    produce(settings, topics.interactions, interactions[:2])

    url = pipeline.metrics_url
    wait_until(
        lambda: (
            value(url, "socialpulse_events_counted_total", topic=topics.mentions) == 13
            and value(url, "socialpulse_events_duplicate_total", topic=topics.interactions) == 2
        ),
        what="13 mentions counted",
    )
    wait_until(
        lambda: value(url, "socialpulse_events_counted_total", topic=topics.interactions) == 15,
        what="15 interactions counted",
    )

    consumer = KafkaConsumer(bootstrap_servers=settings.pipeline.kafka.bootstrap_servers)
    for topic in (topics.mentions, topics.interactions, topics.dead_letter):
        assert len(consumer.partitions_for_topic(topic)) == settings.pipeline.kafka.partitions
    consumer.close()

    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    counts = read_windows(
        client, RedisKeys(settings.pipeline.redis.key_prefix), settings.window_plan, ["acme"]
    )[("acme", 300)]
    # Scores add up as their sum: upstream labels count 1 / 0 / -1, VADER its compound score
    # (VADER 3.3.2: "Terrible service, I hate this" -0.7783, "Absolutely love this, great
    # job!" 0.8998).
    assert counts.pop(("sentiment_score_sum", "x")) == pytest.approx(3 - 2 + 2 * -0.7783)
    assert counts.pop(("sentiment_score_sum", "instagram")) == pytest.approx(3 * 0.8998)
    assert counts == {
        ("mentions", "x"): 10,
        ("mentions_positive", "x"): 3,
        ("mentions_neutral", "x"): 3,
        ("mentions_negative", "x"): 4,
        ("mentions_scored_inhouse", "x"): 2,  # the 2 without an upstream sentiment
        ("mentions", "instagram"): 3,
        ("mentions_positive", "instagram"): 3,
        ("mentions_scored_inhouse", "instagram"): 3,
        ("likes", "instagram"): 7,
        ("shares", "instagram"): 3,
        ("impressions", "x"): 5,
        ("potential_reach", "x"): 100 * sum(range(1, 11)),
        ("potential_reach", "instagram"): 100 * sum(range(11, 14)),
        ("unique_authors", "x"): 10,
        ("unique_authors", "instagram"): 3,
        ("unique_authors", "all"): 11,  # fan0 and fan1 post on both
        ("reach", "x"): 4,
        ("reach", "all"): 4,
    }

    assert kpi(url, "mentions", "acme", "x") == 10
    assert kpi(url, "mentions_negative", "acme", "x") == 4
    assert kpi(url, "mentions_positive", "acme", "instagram") == 3
    assert kpi(url, "likes", "acme", "instagram") == 7
    assert kpi(url, "shares", "acme", "instagram") == 3
    assert kpi(url, "impressions", "acme", "x") == 5
    assert kpi(url, "likes", "acme", "x") == 0  # a configured platform with no likes yet
    assert value(
        url, "socialpulse_average_sentiment", brand="acme", platform="x", window="5m"
    ) == pytest.approx((3 - 2 + 2 * -0.7783) / 10)
    assert (
        value(
            url,
            "socialpulse_inhouse_sentiment_share_ratio",
            brand="acme",
            platform="all",
            window="5m",
        )
        == 5 / 13
    )
    for window in ("1m", "15m", "1h", "1d"):  # fresh events are in every window
        assert kpi(url, "mentions", "acme", "x", window) == 10, window
        assert kpi(url, "likes", "acme", "instagram", window) == 7, window
    # Derived KPIs from config/kpis.yaml, per platform and for all platforms.
    assert (
        value(url, "socialpulse_net_sentiment_ratio", brand="acme", platform="x", window="5m")
        == (3 - 4) / 10
    )
    assert (
        value(url, "socialpulse_net_sentiment_ratio", brand="acme", platform="all", window="5m")
        == (6 - 4) / 13
    )
    assert (
        value(url, "socialpulse_negative_share_ratio", brand="acme", platform="x", window="1m")
        == 0.4
    )
    assert (
        value(
            url,
            "socialpulse_mention_velocity_per_minute",
            brand="acme",
            platform="all",
            window="5m",
        )
        == 13 / 5
    )
    assert (
        value(url, "socialpulse_engagements", brand="acme", platform="instagram", window="5m") == 10
    )
    assert value(url, "socialpulse_ctr_ratio", brand="acme", platform="x", window="5m") == 0
    assert kpi(url, "unique_authors", "acme", "x") == 10
    assert kpi(url, "reach", "acme", "x", "1d") == 4
    # Engagement rate is by the reach the platforms report (metric snapshots), none here: no
    # value, never a division by the 4 distinct viewers; by impressions it is 10 / 5.
    assert (
        value(url, "socialpulse_engagement_rate_ratio", brand="acme", platform="all", window="5m")
        is None
    )
    assert (
        value(
            url,
            "socialpulse_engagement_rate_impressions_ratio",
            brand="acme",
            platform="all",
            window="5m",
        )
        == (7 + 3) / 5
    )
    # 3 mentions, none negative: a real 0. No video starts: no value, so no sample at all.
    assert (
        value(
            url, "socialpulse_negative_share_ratio", brand="acme", platform="instagram", window="5m"
        )
        == 0
    )
    assert (
        value(url, "socialpulse_completion_rate_ratio", brand="acme", platform="x", window="5m")
        is None
    )

    # `socialpulse kpis` prints exactly what /metrics exposes.
    report = kpis_report(settings, "acme", "5m")
    assert report["counters"]["x"]["mentions"] == 10
    assert report["counters"]["instagram"]["likes"] == 7
    assert report["kpis"]["all"]["net_sentiment"] == (6 - 4) / 13
    assert report["kpis"]["x"]["completion_rate"] is None
    shown = metrics(url)
    for platform, values in report["kpis"].items():
        for name, number in values.items():
            spec = next(k for k in settings.kpis.kpis if k.name == name)
            labels = frozenset({"brand": "acme", "platform": platform, "window": "5m"}.items())
            assert shown.get((spec.metric_name, labels)) == number, (name, platform)

    prefix = settings.pipeline.redis.key_prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    assert keys and all(client.ttl(key) > 0 for key in keys)  # memory bounded: all expire
    assert value(url, "socialpulse_events_duplicate_total", topic=topics.mentions) == 3
    assert value(url, "socialpulse_mentions_sentiment_total", source="vader") == 5
    assert value(url, "socialpulse_mentions_sentiment_total", source="upstream") == 8
    # 4 negative < threshold 5: no alert for acme.
    time.sleep(2.5)
    assert [m for m in stub_messages(settings) if "acme" in m["text"]] == []


def test_the_worker_runs_on_jemalloc_when_the_machine_has_it(pipeline) -> None:
    library = jemalloc_library()
    if library is None:
        assert not os.environ.get("CI"), "CI installs libjemalloc2 (.ci/run)"
        assert "memory: the default allocators" in pipeline.log_text()
        return
    # The same process (pid) re-executed itself with jemalloc preloaded.
    pid = pipeline.process.pid
    assert library in Path(f"/proc/{pid}/maps").read_text()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"PYTHONMALLOC=malloc" in environ
    assert "memory: jemalloc for every allocation" in pipeline.log_text()


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    missing_id = mention("globex", "facebook", "hello")
    del missing_id["id"]
    wrong_type = {**mention("globex", "facebook", "hello"), "id": 42}
    bad = [
        b"not json",
        json.dumps(missing_id).encode(),
        json.dumps(wrong_type).encode(),
        b"\xff\xfe\x00",
    ]
    produce(settings, topics.mentions, [*bad, mention("globex", "facebook", "fine", "neutral")])

    url = pipeline.metrics_url

    def invalid(reason: str) -> float | None:
        return value(url, "socialpulse_events_invalid_total", topic=topics.mentions, reason=reason)

    wait_until(lambda: invalid("invalid_fields") == 2, what="2 invalid_fields")
    assert (invalid("not_json"), invalid("not_utf8"), invalid("oversize")) == (1, 1, 0)
    wait_until(
        lambda: kpi(url, "mentions_neutral", "globex", "facebook") == 1,
        what="the valid mention after the bad ones to be counted",
    )

    letters = dead_letters(settings, topics.mentions, stop_after=4)
    by_value = {value: headers for value, headers in letters}
    assert set(by_value) == set(bad)
    assert by_value[b"not json"]["reason"] == b"not_json"
    assert by_value[json.dumps(missing_id).encode()]["detail"] == b"id: required field is missing"
    assert (
        by_value[json.dumps(wrong_type).encode()]["detail"] == b"id: Input should be a valid string"
    )
    assert by_value[b"\xff\xfe\x00"]["reason"] == b"not_utf8"
    assert by_value[b"not json"]["source_topic"] == topics.mentions.encode()
    assert int(by_value[b"not json"]["source_offset"]) >= 0
    assert "dead-lettered" in pipeline.log_text() and "not_json" in pipeline.log_text()


def test_envelope_events_count_alone_and_its_bad_event_alone_is_dead_lettered(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    first, second = (
        interaction("globex", "linkedin", "like"),
        interaction("globex", "linkedin", "like"),
    )
    bad = {**interaction("globex", "linkedin", "like"), "kind": "poke"}
    envelope = json.dumps([first, second, first, bad]).encode()  # `first` twice: counted once
    url = pipeline.metrics_url

    def consumed() -> float:
        return value(url, "socialpulse_events_consumed_total", topic=topics.interactions) or 0

    def invalid() -> float:
        topic = topics.interactions
        return (
            value(url, "socialpulse_events_invalid_total", topic=topic, reason="invalid_fields")
            or 0
        )

    before, invalid_before = consumed(), invalid()
    duplicates = value(url, "socialpulse_events_duplicate_total", topic=topics.interactions) or 0
    produce(settings, topics.interactions, [envelope])

    wait_until(
        lambda: kpi(url, "likes", "globex", "linkedin") == 2, what="2 likes from the envelope"
    )
    wait_until(lambda: consumed() - before == 4, what="4 events consumed from one message")
    assert value(url, "socialpulse_events_duplicate_total", topic=topics.interactions) == (
        duplicates + 1
    )
    assert invalid() - invalid_before == 1
    letters = dead_letters(settings, topics.interactions)
    assert len(letters) == 1
    letter, headers = letters[0]
    assert json.loads(letter) == bad  # just the bad event, not the whole envelope
    assert headers["envelope_index"] == b"3"
    assert headers["detail"].startswith(b"kind: kind 'poke' is not one of impression, like")


def test_roi_worked_example_and_cost_kpis_on_the_real_stack(pipeline) -> None:
    # shared/KPIS.md: spend 100,000; 200 orders at 500 each -> revenue 100,000; ROI 0%.
    settings: Settings = pipeline.settings
    url = pipeline.metrics_url

    def event(kind: str, value: float | None = None) -> dict[str, Any]:
        e = interaction("globex", "facebook", kind)
        if value is not None:
            e["value"] = value
        return e

    def invalid() -> float:
        topic = settings.pipeline.topics.interactions
        return (
            value(url, "socialpulse_events_invalid_total", topic=topic, reason="invalid_fields")
            or 0
        )

    invalid_before = invalid()
    produce(
        settings,
        settings.pipeline.topics.interactions,
        [event("spend", 25_000) for _ in range(4)]
        + [event("order", 500) for _ in range(200)]
        + [event("click") for _ in range(50)]
        + [event("conversion") for _ in range(10)]
        + [event("impression") for _ in range(400)]
        + [event("content_cost", 40_000)]
        + [event("order")],
    )  # last: no value

    def kpi_value(name: str) -> float | None:
        return value(url, f"socialpulse_{name}", brand="globex", platform="facebook", window="5m")

    wait_until(
        lambda: kpi_value("impressions") == 400 and kpi_value("orders") == 200,
        what="the money events counted",
    )
    assert (kpi_value("spend"), kpi_value("revenue")) == (100_000, 100_000)
    assert kpi_value("roi_ratio") == 0.0
    assert kpi_value("production_cost") == 40_000
    assert kpi_value("content_roi_ratio") == 1.5  # (100,000 - 40,000) / 40,000
    assert kpi_value("aov") == 500
    assert kpi_value("cpc") == 2_000
    assert kpi_value("cpm") == 250_000
    assert kpi_value("cac") == 10_000
    assert kpi_value("conversion_rate_ratio") == 0.2
    assert kpi_value("refund_rate_ratio") == 0
    assert kpi_value("open_rate_ratio") is None  # nothing delivered: no value
    assert invalid() - invalid_before == 1  # the order without a value


def test_followers_surveys_and_share_of_voice_on_the_real_stack(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    url = pipeline.metrics_url

    def event(kind: str, value: float | None = None, ago: float = 0) -> dict[str, Any]:
        e = interaction("globex", "youtube", kind)
        e["ts"] = (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()
        if value is not None:
            e["value"] = value
        return e

    produce(
        settings,
        topics.interactions,
        [event("followers", 1000, ago=60), event("followers", 1200, ago=10)]
        + [event("follow") for _ in range(30)]
        + [event("unfollow") for _ in range(10)]
        + [event("like") for _ in range(12)]
        + [event("nps_response", score) for score in (10, 9, 3, 7)]
        + [event("csat_response", score) for score in (5, 2)],
    )
    # An older snapshot arriving last must not replace the newer count.
    produce(settings, topics.interactions, [event("followers", 900, ago=120)])
    produce(
        settings,
        topics.mentions,
        [mention("acme", "weibo", "hi", "neutral") for _ in range(3)]
        + [mention("globex", "weibo", "hi", "neutral")],
    )

    def youtube(name: str) -> float | None:
        return value(url, f"socialpulse_{name}", brand="globex", platform="youtube", window="5m")

    wait_until(
        lambda: youtube("csat_responses") == 2 and youtube("likes") == 12,
        what="the follower, like and survey events counted",
    )
    wait_until(lambda: kpi(url, "mentions", "globex", "weibo") == 1, what="globex's weibo mention")
    assert youtube("followers") == 1200
    assert (youtube("follows"), youtube("unfollows")) == (30, 10)
    assert youtube("applause_rate_ratio") == 0.01
    assert (youtube("nps_promoters"), youtube("nps_detractors")) == (2, 1)

    def hourly(name: str) -> float | None:
        return value(url, f"socialpulse_{name}", brand="globex", platform="youtube", window="1h")

    # These three are declared for the 1h and 24h windows only (config/kpis.yaml).
    assert hourly("follower_growth_rate_ratio") == 20 / 1180  # 1,180 at the window's start
    assert hourly("nps_ratio") == 0.25
    assert hourly("csat_ratio") == 0.5
    assert youtube("nps_ratio") is None and youtube("follower_growth_rate_ratio") is None
    # acme's competitor is globex (tests/conftest.py): 3 of the 4 weibo mentions are acme's.
    assert (
        value(url, "socialpulse_competitor_mentions", brand="acme", platform="weibo", window="5m")
        == 1
    )
    assert (
        value(url, "socialpulse_share_of_voice_ratio", brand="acme", platform="weibo", window="5m")
        == 0.75
    )
    # globex has no competitors configured: no share of voice at all, rather than 100%.
    assert (
        value(
            url, "socialpulse_share_of_voice_ratio", brand="globex", platform="weibo", window="5m"
        )
        is None
    )


def test_customer_care_response_times_rate_and_backlog_on_the_real_stack(pipeline) -> None:
    settings: Settings = pipeline.settings
    url = pipeline.metrics_url
    platform = "xiaohongshu"
    base = datetime.now(UTC).replace(microsecond=0)  # whole seconds: exact differences

    def at(ago: float) -> str:
        return (base - timedelta(seconds=ago)).isoformat()

    def inbound(event_id: str, ago: float) -> dict[str, Any]:
        return {
            **mention("acme", platform, "where is my order?", "negative", ago=ago),
            "id": event_id,
            "ts": at(ago),
            "needs_reply": True,
        }

    def reply(event_id: str, to: str, ago: float) -> dict[str, Any]:
        return {
            **mention("acme", platform, "on its way!", ago=ago, author="acme_care"),
            "id": event_id,
            "ts": at(ago),
            "from_brand": True,
            "reply_to": to,
        }

    run = uuid.uuid4().hex[:6]
    q1, q2, q3, q4 = (f"q{n}-{run}" for n in range(1, 5))
    r1 = reply(f"r1-{run}", q1, ago=80)  # 120 s after q1
    produce(
        settings,
        settings.pipeline.topics.mentions,
        [
            inbound(q1, ago=200),
            inbound(q2, ago=100),
            inbound(q3, ago=50),  # never answered
            inbound(q4, ago=30),  # never answered
            r1,
            reply(f"r2-{run}", q2, ago=40),  # 60 s after q2
            r1,  # redelivered: changes nothing
            reply(f"r3-{run}", q1, ago=20),  # a second reply: not a new response
        ],
    )

    def care(name: str) -> float | None:
        return value(url, f"socialpulse_{name}", brand="acme", platform=platform, window="5m")

    wait_until(lambda: care("brand_replies") == 3, what="3 brand replies")
    assert care("inbound_needing_reply") == 4
    assert care("mentions") == 4  # the brand's replies are not mentions
    assert care("responses") == 2
    assert care("response_rate_ratio") == 0.5
    assert care("response_time_median_seconds") == 90
    assert care("response_time_p90_seconds") == 120
    assert care("unanswered") == 2
    oldest = care("oldest_unanswered_seconds")
    assert oldest is not None and 50 <= oldest < 120  # q3, aging
    # The CLI reads the same values, including the "all platforms" quantiles.
    counts = read_windows(
        redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True),
        RedisKeys(settings.pipeline.redis.key_prefix),
        settings.window_plan,
        ["acme"],
    )[("acme", 300)]
    assert counts[("response_time_median_seconds", "all")] == 90
    assert counts[("unanswered", "all")] == 2


def test_chinese_and_emoji_mentions_are_scored_in_house(pipeline) -> None:
    settings: Settings = pipeline.settings
    url = pipeline.metrics_url

    def by_source(source: str) -> float:
        return value(url, "socialpulse_mentions_sentiment_total", source=source) or 0

    before = {s: by_source(s) for s in ("snownlp", "emoji", "vader")}
    produce(
        settings,
        settings.pipeline.topics.mentions,
        [
            mention("globex", "wechat", "航班又延误了,太失望"),
            mention("globex", "wechat", "😡👎"),
            mention("globex", "wechat", "Love it 😍"),
        ],
    )
    wait_until(lambda: kpi(url, "mentions", "globex", "wechat") == 3, what="3 wechat mentions")
    assert kpi(url, "mentions_negative", "globex", "wechat") == 2
    assert kpi(url, "mentions_positive", "globex", "wechat") == 1
    assert kpi(url, "mentions_scored_inhouse", "globex", "wechat") == 3
    assert {s: by_source(s) - n for s, n in before.items()} == {
        "snownlp": 1,
        "emoji": 1,
        "vader": 1,
    }


def test_campaign_and_content_kpis_across_platforms_on_the_real_stack(pipeline) -> None:
    settings: Settings = pipeline.settings
    ad = f"ad-{uuid.uuid4().hex[:6]}"  # one content item (on tiktok) of the campaign

    def event(platform: str, kind: str, value: float | None = None) -> dict[str, Any]:
        e = {**interaction("globex", platform, kind), "campaign": "spring-26"}
        e["content_id"] = ad if platform == "tiktok" else f"{ad}-cn"
        if value is not None:
            e["value"] = value
        return e

    produce(
        settings,
        settings.pipeline.topics.interactions,
        [event("tiktok", "click") for _ in range(3)]
        + [event("douyin", "click")]
        + [event("tiktok", "impression") for _ in range(40)]
        + [event("tiktok", "spend", 30), event("douyin", "spend", 20)]
        + [event("douyin", "conversion"), event("douyin", "order", 100)]
        # A second, quieter campaign: over the fixture's cap of one campaign with series.
        + [{**interaction("globex", "x", "click"), "campaign": "tiny-26"} for _ in range(2)],
    )
    url = pipeline.metrics_url
    wait_until(
        lambda: kpi(url, "conversions", "globex", "douyin") == 1, what="the campaign counted"
    )

    campaigns = kpis_report(settings, "globex", "15m", "--by", "campaign")
    spring = campaigns["counters"]["spring-26"]
    assert (spring["clicks"], spring["impressions"], spring["spend"]) == (4, 40, 50)
    assert spring["conversions"] == 1
    assert campaigns["kpis"]["spring-26"]["cpc"] == 12.5  # 50 over both platforms' 4 clicks
    assert campaigns["kpis"]["spring-26"]["ctr"] == 0.1
    assert campaigns["kpis"]["spring-26"]["cac"] == 50
    assert campaigns["by"] == "campaign"
    content = kpis_report(settings, "globex", "15m", "--by", "content")
    assert content["counters"][ad]["clicks"] == 3
    assert content["kpis"][ad]["cpc"] == 10  # 30 spent on it over its 3 clicks
    assert content["kpis"][ad]["ctr"] == 3 / 40
    assert content["counters"][f"{ad}-cn"]["conversions"] == 1

    # /metrics: the busiest campaign has its series; the other is left out by the guard,
    # counted once however often Prometheus scrapes.
    series = {"brand": "globex", "platform": "all", "campaign": "spring-26", "window": "1h"}

    def campaign_series() -> dict[Sample, float] | None:
        scrape = metrics(url)
        wanted = ("socialpulse_campaign_roi_ratio", frozenset(series.items()))
        return scrape if wanted in scrape else None

    scrape = wait_until(campaign_series, what="the campaign's series on /metrics")
    assert scrape[("socialpulse_campaign_clicks", frozenset(series.items()))] == 4
    assert scrape[("socialpulse_campaign_spend", frozenset(series.items()))] == 50
    assert scrape[("socialpulse_campaign_cpc", frozenset(series.items()))] == 12.5
    assert scrape[("socialpulse_campaign_ctr_ratio", frozenset(series.items()))] == 0.1
    assert scrape[("socialpulse_campaign_cac", frozenset(series.items()))] == 50
    assert scrape[("socialpulse_campaign_roi_ratio", frozenset(series.items()))] == 1.0
    assert not [k for k in scrape if dict(k[1]).get("campaign") == "tiny-26"]
    metrics(url)  # a second scrape counts nothing new
    assert value(url, "socialpulse_metric_campaigns_over_cap", brand="globex") == 1
    assert value(url, "socialpulse_metric_campaigns_dropped_total", brand="globex") == 1


def test_bots_and_over_rate_authors_are_left_out_and_counted_as_filtered(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    url = pipeline.metrics_url
    limit = settings.pipeline.cleaning.max_mentions_per_author_per_minute  # 20
    # One author's 25 mentions in one minute (one event time, so no minute boundary between).
    same_minute = mention("acme", "youtube", "x", ago=5)["ts"]
    flood = [
        {**mention("acme", "youtube", "buy now", "positive", author="@flooder"), "ts": same_minute}
        for _ in range(limit + 5)
    ]
    bots = [{**mention("acme", "youtube", "x", "negative"), "is_bot": True} for _ in range(3)]
    people = [mention("acme", "youtube", "nice", "positive") for _ in range(4)]
    produce(settings, topics.mentions, flood + bots + people)
    produce(settings, topics.mentions, flood[-5:] + bots[:1])  # redeliveries change nothing

    def filtered(reason: str) -> float | None:
        return value(url, "socialpulse_events_filtered_total", topic=topics.mentions, reason=reason)

    def processed() -> float:
        return sum(kpi(url, name, "acme", "youtube") or 0 for name in ("mentions", "filtered"))

    wait_until(
        lambda: processed() == len(flood) + len(bots) + len(people),
        what=f"all {len(flood) + len(bots) + len(people)} mentions counted or filtered",
    )
    # The flood's first 20 mentions (the limit) count: 20 + 4 people; 5 over-rate + 3 bots out.
    assert kpi(url, "mentions", "acme", "youtube") == 24
    assert kpi(url, "filtered", "acme", "youtube") == 8
    assert kpi(url, "mentions_negative", "acme", "youtube") == 0
    assert (filtered("bot"), filtered("author_rate")) == (3, 5)


def test_late_events_are_left_out_visibly_and_future_ones_dead_lettered(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    url = pipeline.metrics_url
    lateness = settings.pipeline.windows.allowed_lateness
    produce(
        settings,
        topics.mentions,
        [
            mention("acme", "tiktok", "x", "positive", ago=lateness - 60),  # late but allowed
            mention("acme", "tiktok", "x", "positive", ago=lateness + 60),  # too late
            mention("acme", "tiktok", "x", "positive", ago=-3600),  # an hour in the future
        ],
    )
    wait_until(
        lambda: value(url, "socialpulse_events_too_late_total", topic=topics.mentions) == 1,
        what="one too-late event",
    )
    wait_until(
        lambda: (
            value(
                url,
                "socialpulse_events_invalid_total",
                topic=topics.mentions,
                reason="ts_in_future",
            )
            == 1
        ),
        what="one future event dead-lettered",
    )
    assert kpi(url, "mentions", "acme", "tiktok", "15m") == 1
    assert kpi(url, "mentions", "acme", "tiktok", "5m") == 0  # it happened 9 minutes ago


def test_negative_burst_posts_exactly_one_slack_message(pipeline) -> None:
    settings: Settings = pipeline.settings
    topics = settings.pipeline.topics
    [rule] = [r for r in settings.alerts.rules if r.name == "negative_mentions_high"]  # value 5
    threshold = int(rule.value or 0)
    produce(
        settings,
        topics.mentions,
        [
            mention("globex", "x", "Worst airline ever, awful and rude staff")
            for _ in range(threshold - 1)
        ]
        + [mention("globex", "x", "on time, nice", "positive")],
    )
    url = pipeline.metrics_url
    wait_until(
        lambda: kpi(url, "mentions_negative", "globex", "x") == threshold - 1,
        what="negatives below threshold counted",
    )
    ticks_after(url)  # the rules ran on the counts below the threshold
    assert stub_messages(settings) == []

    produce(settings, topics.mentions, [mention("globex", "x", "x", "negative")])
    [message] = wait_until(lambda: stub_messages(settings), what="the Slack message")
    assert message["method"] == "chat.postMessage"
    assert message["channel"] == settings.alerts.slack.channel
    assert message["text"] == (
        "[CRITICAL] Globex Airlines (globex) on x: "
        f"mentions_negative {threshold} in the last 5m (threshold rule negative_mentions_high)"
    )
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert f"*mentions_negative (5m)*\n{threshold}" in fields
    assert "*Platform*\nx" in fields

    # Still above the threshold and rising: not repeated.
    produce(settings, topics.mentions, [mention("globex", "x", "x", "negative") for _ in range(3)])
    wait_until(
        lambda: kpi(url, "mentions_negative", "globex", "x") == threshold + 3,
        what="more negatives counted",
    )
    ticks_after(url)  # the rules ran on the counts still above it
    calls = stub_messages(settings)
    assert calls[0] == message and len([c for c in calls if "thread_ts" in c]) == 0
    # Fired early, the post may be updated once with its tick's complete count (the 3 more
    # when they were counted before that tick closed): never a second post, nor a reply.
    updates = calls[1:]
    assert [c["method"] for c in updates] in ([], ["chat.update"])
    for update in updates:
        assert update["ts"] == message["ts"]
        assert f"mentions_negative {threshold + 3} in the last 5m" in update["text"]
    sent = value(
        url, "socialpulse_alerts_sent_total", rule="negative_mentions_high", severity="critical"
    )
    assert sent == 1


def test_backfilled_baseline_rule_levels_and_targets_are_on_metrics(pipeline, tmp_path) -> None:
    settings: Settings = pipeline.settings
    # Two days of 40 mentions per 15 minutes on x, up to the current 5-minute step.
    end = math.floor(time.time() / 300) * 300
    csv = tmp_path / "mentions.csv"
    csv.write_text(
        "timestamp,value\n" + "".join(f"{end - 300 * i},40\n" for i in range(576, 0, -1))
    )
    done = backfill_mentions_baseline(settings, "--csv", str(csv))
    assert done.returncode == 0, done.stderr
    assert "relearned, 576 samples learned, 576 in all, ready" in done.stdout
    base = {"brand": "acme", "platform": "x", "window": "15m", "kpi": "mentions"}

    def exported() -> dict[Sample, float] | None:
        scrape = metrics(pipeline.metrics_url)
        shown = scrape.get(("socialpulse_kpi_baseline", frozenset(base.items())))
        # 40, and at most a sample or two of the quiet x feed (the worker's own baseline before
        # the takeover is far lower).
        return scrape if shown is not None and 36 < shown < 40 + 1e-9 else None

    # /metrics shows it from the next evaluated tick: the worker takes the backfill over and
    # exports what that tick judged by.
    scrape = wait_until(exported, timeout=30, what="the backfilled baseline on /metrics")
    expected = scrape[("socialpulse_kpi_baseline", frozenset(base.items()))]
    level = {**base, "rule": "mention_volume_surge", "bound": "upper"}
    upper = scrape[("socialpulse_alert_rule_trigger_level", frozenset(level.items()))]
    # budget.start_z = 8 spreads above on the square-root scale (the surge rule's level is
    # calibrated from surges not seen yet); the spread is 0.5 (the count noise floor) plus
    # what the live samples taught it.
    assert 0.5 <= (math.sqrt(upper) - math.sqrt(expected)) / 8 < 0.55
    firing = {"rule": "mention_volume_surge", "severity": "warning", "brand": "acme"}
    assert (
        scrape[("socialpulse_alert_rule_firing", frozenset({**firing, "platform": "x"}.items()))]
        == 0
    )
    high = {
        "rule": "negative_mentions_high",
        "brand": "acme",
        "platform": "x",
        "kpi": "mentions_negative",
        "window": "5m",
        "bound": "upper",
    }
    assert scrape[("socialpulse_alert_rule_trigger_level", frozenset(high.items()))] == 5
    for name, benchmark in settings.alerts.benchmarks.items():
        assert scrape[("socialpulse_kpi_benchmark", frozenset({"kpi": name}.items()))] == benchmark

    # The shipped SMART target: acme's share of voice from its start value to 60%.
    [target] = settings.alerts.targets
    assert target.start_value is not None
    labels = frozenset(
        {
            "target": target.name,
            "brand": "acme",
            "kpi": "share_of_voice",
            "platform": "all",
            "window": "1d",  # 24h, as every metric shows it
        }.items()
    )
    sov = scrape[
        (
            "socialpulse_share_of_voice_ratio",
            frozenset({"brand": "acme", "platform": "all", "window": "1d"}.items()),
        )
    ]
    progress = scrape[("socialpulse_target_progress_ratio", labels)]
    assert progress == pytest.approx(
        (sov - target.start_value) / (target.value - target.start_value)
    )
    start, deadline = day_start(target.start), day_start(target.deadline)
    used = scrape[("socialpulse_target_time_used_ratio", labels)]
    assert used == pytest.approx(min((time.time() - start) / (deadline - start), 1.0), abs=1e-4)
    on_track = sov >= target.value or (time.time() < deadline and progress >= used)
    assert scrape[("socialpulse_target_on_track", labels)] == (1.0 if on_track else 0.0)
    assert scrape[("socialpulse_target_value", labels)] == target.value

    # The negative share's baseline (negative_spike's) and its normal band, for the boards.
    csv.write_text(
        "timestamp,value\n" + "".join(f"{end - 300 * i},0.1\n" for i in range(576, 0, -1))
    )
    done = run_cli(
        settings,
        *("baseline", "backfill", "--brand", "acme", "--kpi", "negative_share"),
        *("--window", "15m", "--platform", "x", "--csv", str(csv)),
    )
    assert done.returncode == 0, done.stderr
    share = {**base, "kpi": "negative_share"}

    def band() -> dict[str, float] | None:
        scrape = metrics(pipeline.metrics_url)
        bounds = {
            bound: scrape.get(
                ("socialpulse_kpi_baseline_band", frozenset({**share, "bound": bound}.items()))
            )
            for bound in ("lower", "upper")
        }
        expected = scrape.get(("socialpulse_kpi_baseline", frozenset(share.items())))
        if expected is None or None in bounds.values() or not 0.09 < expected < 0.11:
            return None  # not yet taken over (the worker's own baseline is elsewhere)
        return {"expected": expected, **bounds}  # type: ignore[dict-item]

    shown = wait_until(band, timeout=30, what="the negative share's baseline band")
    assert 0.09 < shown["expected"] < 0.11
    assert shown["lower"] < shown["expected"] < shown["upper"] < 1


def test_prometheus_scrapes_the_worker_and_every_grafana_panel_query_returns_data(
    pipeline, tmp_path: Path
) -> None:
    settings: Settings = pipeline.settings
    run = settings.pipeline.redis.key_prefix.removeprefix("t")

    # Mentions of this test's own (no other test here sends globex's douyin mentions): one,
    # scraped, then six more.
    def scraped(expr: str, expected: float) -> list[Any] | None:
        result = list(prometheus_query(settings, expr)["data"]["result"])
        return result if result and float(result[0]["value"][1]) == expected else None

    douyin = f'brand="globex",platform="douyin",test_run="{run}"'
    for sent, seen in ((1, 1.0), (6, 7.0)):
        produce(
            settings,
            settings.pipeline.topics.mentions,
            [mention("globex", "douyin", "ok", "neutral") for _ in range(sent)],
        )
        expr = f"socialpulse_counted_mentions_total{{{douyin}}}"
        wait_until(lambda e=expr, n=seen: scraped(e, n), timeout=60, what=f"{expr} at {seen}")
    gauge = f'socialpulse_mentions{{{douyin},window="5m"}}'
    [sample] = wait_until(lambda: scraped(gauge, 7), timeout=60, what="7 mentions in 5m")
    assert sample["metric"]["job"] == "socialpulse-worker"

    # The boards' windows from the running totals, as the panels ask for them: exactly the 7
    # mentions (the worker showed douyin's at 0 before the first: a configured platform), and
    # KPIs over them. Only this test's worker (other tests' workers count a globex too).
    kpi = Catalog(settings)
    this_run = {"brand": f'globex", test_run="{run}', "platform": "douyin"}
    for query, expected in (
        (kpi.by_platform("mentions", "5m"), 7.0),
        (kpi.total("mentions_neutral", "5m"), 7.0),
        (kpi.by_platform("mention_velocity", "5m"), 1.4),
        (kpi.by_platform("net_sentiment", "5m"), 0.0),
        (kpi.by_platform("negative_share", "1h"), 0.0),
    ):
        shown = substitute(query, this_run)

        def values(shown: str = shown) -> list[float]:
            result = prometheus_query(settings, shown)["data"]["result"]
            return [float(r["value"][1]) for r in result]

        wait_until(
            lambda want=expected: values() == [want], timeout=30, what=f"{expected} from {shown}"
        )

    # Then the demo stream (the whole mix: snapshots, care threads, surveys, campaigns...) on top
    # of what the tests sent, as a user's boards would see it: twice, a few scrapes apart, as
    # a stream goes on.
    sent = 0
    for seed in ("7", "8"):
        done = run_cli(settings, "simulate", "--rate", "200", "--duration", "8", "--seed", seed)
        assert done.returncode == 0, done.stderr
        sent += int(re.search(r"sent (\d+) events", done.stdout).group(1))  # type: ignore[union-attr]
        time.sleep(12)  # two scrapes
    topics = [settings.pipeline.topics.mentions, settings.pipeline.topics.interactions]

    def read_all() -> bool:
        scrape = metrics(pipeline.metrics_url)
        lag = [v for (name, _), v in scrape.items() if name == "socialpulse_consumer_lag_messages"]
        read = sum(
            scrape.get(("socialpulse_events_consumed_total", frozenset({"topic": t}.items())), 0)
            for t in topics
        )
        return read >= sent and len(lag) == 18 and not any(lag)

    wait_until(read_all, timeout=60, what="the worker to read the demo stream")

    # An ingest gateway on the same topics, which the local Prometheus scrapes while it runs:
    # some accepted items, one rejected, one request with a wrong token.
    folder = settings.config_dir
    (folder / "ingest.yaml").write_text(
        yaml.safe_dump({"gateway": {"port": free_port(), "sources": ["listening"]}})
    )
    gateway = start_gateway(folder, tmp_path / "gateway.log", "token-" + uuid.uuid4().hex)
    try:
        _every_panel_query_returns_data(pipeline, gateway)
    finally:
        gateway.stop()
    port = gateway.url.rsplit(":", 1)[1]
    assert not (gateway_targets_dir() / f"gateway-{port}.json").exists()


def _every_panel_query_returns_data(pipeline: Any, gateway: Gateway) -> None:
    settings: Settings = pipeline.settings
    items = [mention("acme", "x", "via the gateway", "positive") for _ in range(3)]
    status, answer = gateway.post_events([*items, {"type": "mention", "id": "no-brand"}])
    assert (status, answer["accepted"], answer["rejected"]) == (200, 3, 1), answer
    assert gateway.post_events(items, token="wrong")[0] == 401
    port = gateway.url.rsplit(":", 1)[1]
    assert json.loads((gateway_targets_dir() / f"gateway-{port}.json").read_text()) == [
        {"targets": [f"127.0.0.1:{port}"], "labels": {}}
    ]
    accepted = 'socialpulse_ingest_events_total{job="socialpulse-gateway",outcome="accepted"}'
    wait_until(
        lambda: prometheus_query(settings, accepted)["data"]["result"],
        timeout=60,
        what="Prometheus to scrape the gateway",
    )

    # Every name a board or a recording rule reads is one the worker or the gateway exports
    # (or a rule records).
    exported = {name for name, _ in metrics(pipeline.metrics_url)}
    exported |= {name for name, _ in metrics(gateway.url + "/metrics")}
    groups = yaml.safe_load((ROOT / "config/prometheus/rules/socialpulse.rules.yml").read_text())
    rules = [rule for group in groups["groups"] for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules}
    # A running total has a series once its counter has counted something for a brand: the
    # boards read every one that can be (as 0 until then).
    exported_or_counted = exported | {total_name(c) for c in RUNNING_TOTALS}
    for rule in rules:
        assert metric_names(rule["expr"]) <= exported, (rule["record"], rule["expr"])
    # ... and every name it exports is documented in docs/metrics.md.
    doc = (ROOT / "docs/metrics.md").read_text()
    for name in sorted(n for n in exported if n.startswith("socialpulse_")):
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        names = {name, family, name.removeprefix("socialpulse_")}
        documented = any(f"`{n}`" in doc for n in names) or name.startswith("socialpulse_campaign_")
        if name.startswith("socialpulse_counted_"):
            # Documented as socialpulse_counted_<counter>_total, for each catalog counter.
            counter = name.removeprefix("socialpulse_counted_").removesuffix("_total")
            documented = "`socialpulse_counted_<counter>_total" in doc and f"`{counter}`" in doc
        assert documented, f"{name} is not in docs/metrics.md"
    boards = sorted((ROOT / "grafana/dashboards").glob("*.json"))
    assert len(boards) == 8

    # Every panel query of every board, with template variables substituted, runs without error
    # on the real Prometheus scraping the real worker and returns data (for acme or for globex:
    # the tests put money and campaigns on globex); annotation queries run without error.
    time.sleep(10)  # rate()/increase() and the recording rules need two scrapes
    for board in boards:
        dashboard = json.loads(board.read_text())
        for annotation in dashboard["annotations"]["list"]:
            assert metric_names(annotation["expr"]) <= exported | recorded, annotation["name"]
            query = substitute(annotation["expr"], {"brand": "acme"})
            assert prometheus_query(settings, query)["status"] == "success", annotation
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                used = metric_names(target["expr"])
                assert used and used <= exported_or_counted | recorded, (
                    panel["title"],
                    used - exported_or_counted,
                )
                results = []
                for brand in ("acme", "globex"):
                    query = substitute(target["expr"], {"brand": brand, "platform": ".*"})
                    reply = prometheus_query(settings, query)
                    assert reply["status"] == "success", (board.name, panel["title"], reply)
                    results += reply["data"]["result"]
                assert results, f"{board.name}: '{panel['title']}' has no data: {target['expr']}"
