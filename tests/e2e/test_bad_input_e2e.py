"""Bad input on the real stack, as careless or hostile sources send it: each event that cannot
be counted is dead-lettered with its reason and costs nothing else; ids and names with any
characters count under their true names; numbers stay finite; lenient mode is bounded."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.topics import ensure_topics
from streams.windows import bucket_start
from tests.conftest import Worker, run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import interaction, mention, produce
from tests.e2e.helpers.reading import dead_letters, kpi, kpis_report, value, wait_until


def strict_json(text: str) -> Any:
    """JSON as the standard demands: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def counted(worker: Worker, topic: str) -> float:
    return value(worker.metrics_url, "socialpulse_events_counted_total", topic=topic) or 0


def invalid(worker: Worker, topic: str, reason: str) -> float:
    found = value(
        worker.metrics_url, "socialpulse_events_invalid_total", topic=topic, reason=reason
    )
    return found or 0


def test_url_content_ids_and_delimiters_count_under_their_true_names(pipeline: Worker) -> None:
    settings = pipeline.settings
    topic = settings.pipeline.topics.interactions
    run = uuid.uuid4().hex[:6]
    likes = []
    for _ in range(200):
        like = interaction("globex", "facebook", "like")
        like["content_id"] = f"post-{run}"
        like["campaign"] = f"spring={run},eu"
        likes.append(like)
    likes[7]["content_id"] = f"https://shop.example/p?ref=newsletter&run={run}"
    promo = {**interaction("globex", "facebook", "like"), "content_id": f"promo-{run}?id=42"}
    # A post URL as the event id too.
    promo["id"] = f"https://www.facebook.com/globex/posts/{run}?comment_id=1,2"
    produce(settings, topic, [json.dumps(likes).encode(), promo])
    content = wait_until(
        lambda: (c := _content(settings, run)) and sum(c.values()) == 201 and c,
        what="201 likes by content item",
    )
    assert content == {
        f"post-{run}": 199,
        f"https://shop.example/p?ref=newsletter&run={run}": 1,
        f"promo-{run}?id=42": 1,
    }
    campaigns = kpis_report(settings, "globex", "15m", "--by", "campaign", "--top", "50")
    assert campaigns["counters"][f"spring={run},eu"]["likes"] == 200


def _content(settings: Settings, run: str) -> dict[str, float]:
    report = kpis_report(settings, "globex", "15m", "--by", "content", "--top", "50")
    return {
        item: counters["likes"]
        for item, counters in report["counters"].items()
        if run in item and item != "all"
    }


def test_one_poison_event_costs_that_event_only(pipeline: Worker) -> None:
    """300 valid mentions around envelopes holding a lone surrogate, a 5,000-digit number,
    NaN and infinite or out-of-bound numbers: every valid one counts, each bad one is
    dead-lettered alone with its field named, and revenue stays a finite number."""
    settings = pipeline.settings
    mentions_topic, interactions_topic = (
        settings.pipeline.topics.mentions,
        settings.pipeline.topics.interactions,
    )
    platform = "youtube"
    good = [mention("acme", platform, "fine", "neutral") for _ in range(300)]
    surrogate = json.dumps(mention("acme", platform, "SURROGATE", "neutral")).replace(
        "SURROGATE", "\\ud800"
    )
    huge = json.dumps({**mention("acme", platform, "big", "neutral"), "author_followers": 7})
    huge = huge.replace('"author_followers": 7', '"author_followers": 1' + "0" * 5000)
    nan_sentiment = json.dumps({**mention("acme", platform, "nan", "neutral")}).replace(
        '"sentiment": "neutral"', '"sentiment": NaN'
    )

    def envelope(items: list[Any], bad: str) -> bytes:
        return ("[" + ",".join([*(json.dumps(i) for i in items), bad]) + "]").encode()

    produce(
        settings,
        mentions_topic,
        [
            envelope(good[:100], surrogate),
            *good[100:150],
            envelope(good[150:250], huge),
            envelope(good[250:300], nan_sentiment),
        ],
    )
    orders = []
    for amount in ("1e308", "1e308", "Infinity", "1000000000001"):
        order = {**interaction("acme", platform, "order"), "value": 0}
        orders.append(json.dumps(order).replace('"value": 0', f'"value": {amount}').encode())
    fine_order = {**interaction("acme", platform, "order"), "value": 12.5}
    produce(settings, interactions_topic, [*orders, fine_order])

    wait_until(
        lambda: kpi(pipeline.metrics_url, "mentions", "acme", platform, "5m") == 300,
        what="the 300 valid mentions",
    )
    wait_until(
        lambda: kpi(pipeline.metrics_url, "orders", "acme", platform, "5m") == 1,
        what="the one valid order",
    )
    letters = {
        # The 5,000-digit number is more than Python's int() takes: read as a float here.
        json.loads(v, parse_int=float).get("text"): (
            h["reason"].decode(),
            h["detail"].decode(),
        )
        for v, h in dead_letters(settings, mentions_topic, stop_after=3)
    }
    assert letters == {
        "\ud800": (
            "invalid_fields",
            "text: not valid Unicode (an unpaired surrogate escape such as \\ud800)",
        ),
        "big": ("invalid_fields", "author_followers: Input should be a finite number"),
        "nan": ("invalid_fields", "sentiment: sentiment score nan is outside [-1, 1]"),
    }
    refused = sorted(
        h["detail"].decode() for _, h in dead_letters(settings, interactions_topic, stop_after=4)
    )
    assert refused == [
        "value: Input should be a finite number",
        "value: Input should be less than or equal to 1000000000000",
        "value: Input should be less than or equal to 1000000000000",
        "value: Input should be less than or equal to 1000000000000",
    ]
    done = run_cli(settings, "kpis", "--brand", "acme", "--window", "15m", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = strict_json(done.stdout)
    assert report["counters"][platform]["revenue"] == 12.5
    assert report["kpis"][platform]["aov"] == 12.5


def test_a_batch_redis_refuses_is_dead_lettered_alone_then_replayed(
    stack: Settings, tmp_path: Path
) -> None:
    """A brand's keys in a state the count script refuses (a bucket holding a string): that
    brand's events of the batch are dead-lettered as processing_error, naming the key; the
    other brand's count; the worker goes on; after the fix a replay counts them once."""
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10])
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    worker = start_worker(folder, tmp_path / "worker.log")
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    try:
        topic = settings.pipeline.topics.mentions
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        keys = RedisKeys(settings.pipeline.redis.key_prefix)
        broken = keys.bucket("globex", 10, bucket_start(at.timestamp(), 10))
        client.set(broken, "not a hash", ex=3600)
        events = []
        for brand in ("acme", "globex"):
            for n in range(5):
                event = mention(brand, "x", f"post {n}", "neutral")
                event["ts"] = at.isoformat()
                events.append(event)
        produce(settings, topic, [json.dumps(events[:5]).encode(), json.dumps(events[5:]).encode()])
        wait_until(lambda: kpi(worker.metrics_url, "mentions", "acme", "x") == 5, what="acme")
        wait_until(
            lambda: invalid(worker, topic, "processing_error") == 5, what="5 processing errors"
        )
        letters = dead_letters(settings, topic, stop_after=5)
        assert sorted(json.loads(v)["id"] for v, _ in letters) == sorted(
            e["id"] for e in events[5:]
        )
        assert {h["detail"].decode() for _, h in letters} == {
            f"ResponseError: socialpulse count script: {broken} holds a string, not a hash"
        }
        assert (kpi(worker.metrics_url, "mentions", "globex", "x") or 0) == 0
        assert worker.process.poll() is None
        client.delete(broken)
        replayed = run_cli(settings, "dlq", "replay", "--reason", "processing_error")
        assert replayed.stdout.strip() == "replayed 5 dead letters to their source topics"
        wait_until(lambda: kpi(worker.metrics_url, "mentions", "globex", "x") == 5, what="replay")
        replayed = run_cli(settings, "dlq", "replay", "--reason", "processing_error")
        assert replayed.returncode == 0
        time.sleep(3)  # a second count, if any, would land now
        assert kpi(worker.metrics_url, "mentions", "globex", "x") == 5
    finally:
        client.close()
        stop_worker(worker)


def test_a_mention_and_an_interaction_may_share_a_source_id(pipeline: Worker) -> None:
    settings = pipeline.settings
    shared = f"https://x.com/acme/status/{uuid.uuid4().int % 10**18}"
    post = {**mention("acme", "instagram", "nice one", "positive"), "id": shared}
    like = {**interaction("acme", "instagram", "save"), "id": shared}
    before = kpi(pipeline.metrics_url, "saves", "acme", "instagram") or 0
    mentions_before = kpi(pipeline.metrics_url, "mentions_positive", "acme", "instagram") or 0
    produce(settings, settings.pipeline.topics.mentions, [post])
    produce(settings, settings.pipeline.topics.interactions, [like])
    wait_until(
        lambda: kpi(pipeline.metrics_url, "saves", "acme", "instagram") == before + 1,
        what="the save",
    )
    wait_until(
        lambda: (
            kpi(pipeline.metrics_url, "mentions_positive", "acme", "instagram")
            == mentions_before + 1
        ),
        what="the mention",
    )


@pytest.fixture
def lenient(stack: Settings, tmp_path: Path) -> Any:
    """A worker in lenient mode that counts at most 3 brands or platforms outside
    brands.yaml."""
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10])
    path = folder / "socialpulse.yaml"
    pipeline = yaml.safe_load(path.read_text())
    pipeline["cleaning"].update(strict=False, max_unknown=3)
    path.write_text(yaml.safe_dump(pipeline))
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        yield worker
    finally:
        stop_worker(worker)


def test_lenient_mode_counts_at_most_its_bound_of_unknown_brands(lenient: Worker) -> None:
    """strict: false with max_unknown 3: 50 mentions of each of 10 brands outside brands.yaml,
    and of acme on a platform it does not list. The first 3 brands or pairs seen count; the
    rest are dead-lettered, and Redis holds keys of 3 unknown brands only."""
    settings = lenient.settings
    topic = settings.pipeline.topics.mentions
    unknown = [f"newco{n}" for n in range(10)]
    batches = [
        json.dumps([mention(b, "x", "hello", "neutral") for _ in range(50)]).encode()
        for b in unknown[:3]
    ]
    produce(settings, topic, batches)
    wait_until(lambda: counted(lenient, topic) == 150, what="the first three brands counted")
    later = [
        json.dumps([mention(b, "x", "hello", "neutral") for _ in range(50)]).encode()
        for b in unknown[3:]
    ] + [json.dumps([mention("acme", "myspace", "hi", "neutral") for _ in range(5)]).encode()]
    produce(settings, topic, later)
    wait_until(
        lambda: (
            value(lenient.metrics_url, "socialpulse_events_untracked_total", topic=topic) == 355
        ),
        what="355 untracked",
    )
    assert counted(lenient, topic) == 150
    assert invalid(lenient, topic, "unknown_brand") == 350
    assert invalid(lenient, topic, "unknown_platform") == 5
    [(_, headers)] = [
        (v, h) for v, h in dead_letters(settings, topic) if h["reason"] == b"unknown_platform"
    ][:1]
    assert headers["detail"].decode() == (
        "'acme/myspace' is not in brands.yaml and lenient mode already counts 3 brands and "
        "platforms outside it (cleaning.max_unknown); add it to brands.yaml, or raise the bound"
    )
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    prefix = settings.pipeline.redis.key_prefix
    brands = {key.split("{")[1].split("}")[0] for key in client.scan_iter(f"{prefix}:{{*")}
    client.close()
    assert brands & set(unknown) == set(unknown[:3])
