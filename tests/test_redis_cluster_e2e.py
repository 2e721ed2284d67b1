"""The worker on a real Redis Cluster (three primaries): two workers in one consumer group
count a stream of eight brands, whose keys live on all three nodes, exactly; a node killed with
SIGKILL mid-stream and started again costs nothing (the workers retry while the cluster is
down, and commit no offsets meanwhile); each alert is posted once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import yaml

from socialpulse.settings import Settings, load_settings
from streams.topics import ensure_topics
from tests.conftest import free_port, start_worker, stop_worker, write_config
from tests.redis_cluster import local_cluster
from tests.test_exactly_once import counts, split_unique, stream
from tests.test_pipeline_e2e import stub_messages, value, wait_until

BRANDS = [{"id": f"brand{i}", "name": f"Brand {i}", "platforms": ["x", "tiktok"]} for i in range(8)]
EVENTS, RATE = 6000, 300  # 20 s


def test_two_workers_on_a_redis_cluster_ride_out_a_node_restart(
    stack: Settings, tmp_path: Path
) -> None:
    with local_cluster(tmp_path / "cluster") as cluster:
        folder = write_config(
            tmp_path / "config",
            uuid.uuid4().hex[:10],
            brands=BRANDS,
            alerts={"targets": []},
            campaigns={"brands": []},
        )
        config = folder / "socialpulse.yaml"
        pipeline = yaml.safe_load(config.read_text())
        pipeline["redis"].update(url=cluster.url, cluster=True)
        config.write_text(yaml.safe_dump(pipeline))
        settings = load_settings(folder)
        ensure_topics(settings)
        # The brands' keys are spread over all three nodes, so every node is in the test.
        owners = {b["id"]: cluster.node_of(f"{{{b['id']}}}").port for b in BRANDS}
        assert len(set(owners.values())) == 3, owners

        first = start_worker(folder, tmp_path / "worker-1.log")
        second = start_worker(
            folder,
            tmp_path / "worker-2.log",
            {
                "SOCIALPULSE_METRICS_PORT": str(free_port()),
                "SOCIALPULSE_INTERACTIVITY_PORT": str(free_port()),
            },
        )
        workers = [first, second]
        expected: Counter[tuple[str, str, str]] = Counter()
        done = threading.Event()
        producer = threading.Thread(
            target=stream,
            args=(settings, expected, done),
            kwargs={"events": EVENTS, "rate": RATE, "brands": BRANDS},
        )
        try:
            producer.start()
            time.sleep(6)
            victim = cluster.node_of("{brand0}")
            victim.kill()
            time.sleep(8)
            victim.start()
            cluster.wait_ok()
            producer.join(120)
            assert done.is_set(), "the producer did not finish"
            total = sum(expected.values())
            wait_until(
                lambda: sum(split_unique(counts(settings))[0].values()) >= total,
                timeout=120,
                what="the workers to catch up",
            )
            time.sleep(3)  # a late double count, if any, would land now
            assert split_unique(counts(settings))[0] == expected
            # Both workers counted, and at least one of them met the dead node and retried.
            topics = (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions)
            for worker in workers:
                counted = sum(
                    value(worker.metrics_url, "socialpulse_events_counted_total", topic=t) or 0
                    for t in topics
                )
                assert counted > 0, worker.log
            retries = [
                value(w.metrics_url, "socialpulse_redis_retries_total") or 0 for w in workers
            ]
            assert sum(retries) > 0, retries

            # One Slack post per brand and platform whose negatives crossed the threshold (5),
            # with the lock, detection state and outbox on the cluster.
            negatives = {
                (b, p) for (b, c, p), n in expected.items() if c == "mentions_negative" and n >= 5
            }
            assert negatives == {("brand0", "x"), ("brand4", "x")}

            def posts() -> list[dict]:
                return [
                    m
                    for m in stub_messages(settings)
                    if m["method"] == "chat.postMessage" and not m.get("thread_ts")
                ]

            wait_until(lambda: len(posts()) >= len(negatives), timeout=60, what="the alerts")
            time.sleep(settings.alerts.evaluation.every + 5)  # a duplicate would come now
            posted = Counter(
                next((b, p) for b, p in negatives if f"({b}) on {p}:" in m["text"]) for m in posts()
            )
            assert posted == Counter(dict.fromkeys(negatives, 1))
        finally:
            producer.join(1)
            for worker in workers:
                stop_worker(worker)
