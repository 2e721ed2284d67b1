"""Scale-out on the real stack: three workers in one consumer group on six partitions, one
joining and one leaving mid-stream. The counts are what one worker gives (exact), the work was
shared, each alert was posted once, not once per worker, and each brand is on the /metrics of
exactly one worker: the one holding its partition, with the values Redis holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.brand_partitions import brand_partition
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.scrape_targets import worker_targets_dir
from socialpulse.core.topics import ensure_topics
from tests.conftest import Worker, free_port, start_worker, stop_worker
from tests.e2e.helpers.reading import metrics, wait_until
from tests.e2e.helpers.scale import BRAND_IDS, BRANDS, consumed, counted, eight_brands_config
from tests.e2e.helpers.streaming import (
    assert_counted_exactly,
    assert_one_post_per_alert,
    start_stream,
)

# At most 200 s; the test stops the stream once the third worker has joined and the second
# has left, since a worker takes 10-20 s to start (its sentiment models load first) and a
# fixed length would make "mid-stream" a guess about the machine's speed.
EVENTS, RATE = 60000, 300


def test_three_workers_join_and_leave_mid_stream_and_count_exactly_once(
    stack: Settings, tmp_path: Path
) -> None:
    folder = eight_brands_config(tmp_path / "config")
    settings = load_settings(folder)
    assert settings.pipeline.kafka.partitions == 6
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)

    def own_ports() -> dict[str, str]:
        return {
            "SOCIALPULSE_METRICS_PORT": str(free_port()),
            "SOCIALPULSE_INTERACTIVITY_PORT": str(free_port()),
        }

    first = start_worker(folder, tmp_path / "worker-1.log")
    workers = [first]
    running = start_stream(settings, EVENTS, RATE, BRANDS)
    try:
        time.sleep(4)
        second = start_worker(folder, tmp_path / "worker-2.log", own_ports(), "--register")
        workers.append(second)
        time.sleep(6)
        third = start_worker(folder, tmp_path / "worker-3.log", own_ports())  # joins
        workers.append(third)
        # After a rebalance a worker may take seconds to fetch: wait for the joiner's first
        # events while the stream still runs, then take the second worker away.
        wait_until(lambda: consumed(third, settings) > 0, timeout=45, what="the third to count")
        assert not running.done.is_set()
        wait_until(
            lambda: each_brand_on_its_owner(workers, settings),
            timeout=30,
            what="each brand on the /metrics of the worker holding its partition, of three",
        )
        # The extra worker started with --register was scraped by the local Prometheus.
        port = second.settings.pipeline.worker.metrics_port
        registered = worker_targets_dir() / f"worker-{port}.json"
        assert json.loads(registered.read_text())[0]["targets"] == [f"127.0.0.1:{port}"]
        by_second = counted(second.metrics_url, settings)
        stop_worker(second)  # leaves mid-stream: its partitions move to the others
        assert not registered.exists()
        time.sleep(5)  # the others count its partitions' new events too
        assert not running.done.is_set()
        running.stop.set()
        assert_counted_exactly(settings, running)
        remaining = [first, third]
        wait_until(
            lambda: each_brand_on_its_owner(remaining, settings),
            timeout=30,
            what="each brand on the /metrics of the worker holding its partition, of two",
        )
        # Exact whoever shows it: every brand's running totals as Redis holds them.
        client = redis_client(settings.pipeline.redis, decode_responses=True)
        keys = RedisKeys(settings.pipeline.redis.key_prefix)
        shown = {}
        for worker in remaining:
            for (name, labels), n in metrics(worker.metrics_url).items():
                if name.startswith("socialpulse_counted_"):
                    counter = name.removeprefix("socialpulse_counted_").removesuffix("_total")
                    tags = dict(labels)
                    shown[(tags["brand"], f"{counter}|{tags['platform']}")] = n
        held = {
            (brand, field): float(n)
            for brand in BRAND_IDS
            for field, n in client.hgetall(keys.totals(brand)).items()
        }
        assert {brand for brand, _ in held} == set(BRAND_IDS)
        # And mentions at 0 on each configured platform that has counted none.
        zeros = {
            (brand, f"mentions|{platform}"): 0.0
            for brand in BRAND_IDS
            for platform in ("x", "tiktok")
            if (brand, f"mentions|{platform}") not in held
        }
        assert shown == {**held, **zeros}
        assert_keyed_to_the_partition_brand_partition_gives(settings)
        # The work was shared: each worker counted some of the stream.
        shares = [
            counted(first.metrics_url, settings),
            by_second,
            counted(third.metrics_url, settings),
        ]
        assert all(n > 0 for n in shares), shares
        assert_one_post_per_alert(settings, running.expected)
    finally:
        running.stop.set()
        running.thread.join(1)
        for worker in workers:
            stop_worker(worker)


def exported_brands(worker: Worker) -> dict[str, set[str]]:
    """Brands on the worker's /metrics: with running totals ("totals"), open incidents, rule
    states and the boards' window gauges (by name); and ("partitions") the mentions partitions
    it reports the lag of (its own)."""
    topic = worker.settings.pipeline.topics.mentions
    found: dict[str, set[str]] = {"partitions": set(), "totals": set()}
    for (name, labels), _ in metrics(worker.metrics_url).items():
        tags = dict(labels)
        if name.startswith("socialpulse_counted_"):
            found["totals"].add(tags["brand"])
        elif name in ("socialpulse_incidents", "socialpulse_alert_rule_firing") or (
            name == "socialpulse_mentions" and tags["window"] == "15m"  # a boards' gauge
        ):
            found.setdefault(name, set()).add(tags["brand"])
        elif name == "socialpulse_consumer_lag_messages" and tags["topic"] == topic:
            found["partitions"].add(tags["partition"])
    return found


def each_brand_on_its_owner(workers: list[Worker], settings: Settings) -> bool:
    """Every brand is shown by exactly one of ``workers``: the one that reports its partition
    of the mentions topic as its own (open incidents, rule states and the boards' gauges that
    its evaluation process computes, every brand; running totals, every brand counted so
    far)."""
    count = settings.pipeline.kafka.partitions
    seen: list[dict[str, set[str]]] = [exported_brands(worker) for worker in workers]
    owners = [{b for b in BRAND_IDS if str(brand_partition(b, count)) in s["partitions"]}
              for s in seen]  # fmt: skip
    if sorted(b for owned in owners for b in owned) != sorted(BRAND_IDS):
        return False  # a rebalance under way: partitions not all reported once yet
    families = ("socialpulse_incidents", "socialpulse_alert_rule_firing", "socialpulse_mentions")
    return all(
        all(s.get(f, set()) == owned for f in families) and s["totals"] <= owned
        for s, owned in zip(seen, owners, strict=True)
    ) and set().union(*(s["totals"] for s in seen)) == set(BRAND_IDS)


def assert_keyed_to_the_partition_brand_partition_gives(settings: Settings) -> None:
    """The stream's producer (kafka-python, keyed by brand) put each brand's events in the
    partition brand_partition names, as the broker stored them (mentions and interactions:
    the stream's mentions are of two brands, its interactions of all)."""
    topics = (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        consumer_timeout_ms=3000,
    )
    try:
        found: dict[str, set[int]] = {}
        count = settings.pipeline.kafka.partitions
        partitions = [TopicPartition(t, p) for t in topics for p in range(count)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 30
        while set(found) != set(BRAND_IDS) and time.monotonic() < deadline:
            for _, records in consumer.poll(timeout_ms=1000, max_records=5000).items():
                for record in records:
                    found.setdefault(record.key.decode(), set()).add(record.partition)
    finally:
        consumer.close()
    assert set(found) == set(BRAND_IDS)  # every brand's events read back
    assert found == {b: {brand_partition(b, count)} for b in BRAND_IDS}
