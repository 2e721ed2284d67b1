"""A known stream of events sent at a fixed rate while workers come and go, and the checks that
each of its events was counted exactly once and each alert posted once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer

from socialpulse.app.settings import Settings
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys
from streams.store.redis_store import read_windows
from tests.e2e.helpers.reading import stub_messages, wait_until

BRANDS = [
    {"id": "acme", "name": "Acme", "platforms": ["x", "instagram"]},
    {"id": "globex", "name": "Globex", "platforms": ["x", "facebook"]},
    {"id": "initech", "name": "Initech", "platforms": ["linkedin", "youtube"]},
]


EVENTS = 6000


RATE = 600  # events/s: the stream runs ~10 s, the kill lands in the middle


def stream(
    settings: Settings,
    expected: Counter[tuple[str, str, str]],
    done: threading.Event,
    events: int = EVENTS,
    rate: float = RATE,
    brands: list[dict] = BRANDS,
    poison_every: int = 0,
    poisoned: list[str] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Produce ``events`` mentions and interactions at ``rate``, recording what each must
    count; with ``poison_every``, every so many an interaction of an unknown kind instead
    (dead-lettered; its id added to ``poisoned``); with ``stop``, fewer if it is set first. The
    producer rides out a broker restart: it retries and blocks for up to 2 min."""
    producer = KafkaProducer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        acks="all",
        linger_ms=5,
        retries=2**31 - 1,
        delivery_timeout_ms=120_000,
        max_block_ms=120_000,
    )
    topics = settings.pipeline.topics
    start = time.monotonic()
    for i in range(events):
        if stop is not None and stop.is_set():
            break
        brand = brands[i % len(brands)]
        platform = brand["platforms"][i % 2]
        now = datetime.now(UTC).isoformat()
        if i % 4 == 0:
            label = ("positive", "negative", "neutral")[i % 3]
            event = {
                "id": f"m-{i}",
                "ts": now,
                "platform": platform,
                "brand": brand["id"],
                "author": f"a{i}",
                "text": "t",
                "sentiment": label,
            }
            topic = topics.mentions
            expected[(brand["id"], "mentions", platform)] += 1
            expected[(brand["id"], f"mentions_{label}", platform)] += 1
            score = {"positive": 1, "negative": -1, "neutral": 0}[label]
            expected[(brand["id"], "sentiment_score_sum", platform)] += score
        else:
            kind = ("like", "share", "click")[i % 3]
            poison = bool(poison_every) and i % poison_every == 1
            event = {
                "id": f"i-{i}",
                "ts": now,
                "platform": platform,
                "brand": brand["id"],
                "kind": "poke" if poison else kind,
                "content_id": "c",
                "user_id": f"u{i}",
            }
            topic = topics.interactions
            if poison and poisoned is not None:
                poisoned.append(event["id"])
            else:
                expected[(brand["id"], f"{kind}s", platform)] += 1
        producer.send(topic, key=brand["id"].encode(), value=json.dumps(event).encode())
        ahead = (i + 1) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(120)
    producer.close()
    done.set()


@dataclass
class Stream:
    """A producer thread running :func:`stream`, and what it must count."""

    thread: threading.Thread
    expected: Counter[tuple[str, str, str]]
    done: threading.Event
    stop: threading.Event


def start_stream(
    settings: Settings, events: int = EVENTS, rate: float = RATE, brands: list[dict] = BRANDS
) -> Stream:
    """Start :func:`stream` in a thread; setting the returned ``stop`` ends it early (its
    ``expected`` then holds what was sent)."""
    expected: Counter[tuple[str, str, str]] = Counter()
    done, stop = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=stream,
        args=(settings, expected, done),
        kwargs={"events": events, "rate": rate, "brands": brands, "stop": stop},
    )
    thread.start()
    return Stream(thread, expected, done, stop)


def assert_counted_exactly(settings: Settings, running: Stream) -> None:
    """Wait for the producer to finish and the workers to catch up; then the exact counters in
    Redis are what the stream sent, once each."""
    running.thread.join(180)
    assert running.done.is_set(), "the producer did not finish"
    total = sum(running.expected.values())
    wait_until(
        lambda: sum(split_unique(counts(settings))[0].values()) >= total,
        timeout=120,
        what="the workers to catch up",
    )
    time.sleep(3)  # a late double count, if any, would land now
    assert split_unique(counts(settings))[0] == running.expected


def assert_one_post_per_alert(settings: Settings, expected: Counter[tuple[str, str, str]]) -> None:
    """One Slack post for each brand and platform whose negatives crossed the threshold (5),
    whichever worker held the evaluation lock when; no duplicate comes later."""
    negatives = {(b, p) for (b, c, p), n in expected.items() if c == "mentions_negative" and n >= 5}
    assert negatives == {("brand0", "x"), ("brand4", "x")}  # mentions: every 4th event

    def posts() -> list[dict]:
        return [
            m
            for m in stub_messages(settings)
            if m["method"] == "chat.postMessage" and not m.get("thread_ts")
        ]

    wait_until(lambda: len(posts()) >= len(negatives), timeout=60, what="the alerts")
    time.sleep(settings.alerts.evaluation.every + 5)  # a duplicate, if any, would come now
    posted = Counter(
        next((b, p) for b, p in negatives if f"({b}) on {p}:" in m["text"]) for m in posts()
    )
    assert posted == Counter(dict.fromkeys(negatives, 1))


def split_unique(
    found: Counter[tuple[str, str, str]],
) -> tuple[Counter[tuple[str, str, str]], dict[tuple[str, str], float]]:
    """Exact counters, and the unique-author estimates by (brand, platform or "all")."""
    exact = Counter({k: n for k, n in found.items() if k[1] != "unique_authors"})
    unique = {(b, p): float(n) for (b, c, p), n in found.items() if c == "unique_authors"}
    return exact, unique


def counts(settings: Settings) -> Counter[tuple[str, str, str]]:
    # A cluster client with redis.cluster.
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    windows = read_windows(
        client,
        RedisKeys(settings.pipeline.redis.key_prefix),
        settings.window_plan,
        settings.brand_ids,
    )
    return Counter(
        {
            (brand, counter, platform): n
            for (brand, window), found in windows.items()
            if window == 900
            for (counter, platform), n in found.items()
        }
    )
