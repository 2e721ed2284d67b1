"""The worker on a real Redis Cluster (three primaries): two workers in one consumer group
count a stream of eight brands, whose keys live on all three nodes, exactly; a node killed with
SIGKILL mid-stream and started again costs nothing (the workers retry while the cluster is
down, and commit no offsets meanwhile); each alert is posted once."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.topics import ensure_topics
from tests.conftest import free_port, start_worker, stop_worker
from tests.e2e.helpers.reading import value
from tests.e2e.helpers.redis_cluster import local_cluster
from tests.e2e.helpers.scale import BRANDS, counted, eight_brands_config
from tests.e2e.helpers.streaming import (
    assert_counted_exactly,
    assert_one_post_per_alert,
    start_stream,
)

EVENTS, RATE = 6000, 300  # 20 s


def test_two_workers_on_a_redis_cluster_ride_out_a_node_restart(
    stack: Settings, tmp_path: Path
) -> None:
    with local_cluster(tmp_path / "cluster") as cluster:
        folder = eight_brands_config(tmp_path / "config")
        config = folder / "socialpulse.yaml"
        pipeline = yaml.safe_load(config.read_text())
        pipeline["redis"].update(url=cluster.url, cluster=True)
        config.write_text(yaml.safe_dump(pipeline))
        settings = load_settings(folder)
        ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
        # The brands' keys are spread over all three nodes, so every node is in the test.
        owners = {b["id"]: cluster.node_of(f"{{{b['id']}}}").port for b in BRANDS}
        assert len(set(owners.values())) == 3, owners

        workers = [start_worker(folder, tmp_path / "worker-1.log")]
        own_ports = {
            "SOCIALPULSE_METRICS_PORT": str(free_port()),
            "SOCIALPULSE_INTERACTIVITY_PORT": str(free_port()),
        }
        workers.append(start_worker(folder, tmp_path / "worker-2.log", own_ports))
        running = start_stream(settings, EVENTS, RATE, BRANDS)
        try:
            time.sleep(6)
            victim = cluster.node_of("{brand0}")  # brand0's alert then rides on the restart
            victim.kill()
            time.sleep(8)
            victim.start()
            cluster.wait_ok()
            assert_counted_exactly(settings, running)
            # Both workers counted, and at least one of them met the dead node and retried.
            shares = [counted(w.metrics_url, settings) for w in workers]
            assert all(n > 0 for n in shares), shares
            retries = [
                value(w.metrics_url, "socialpulse_redis_retries_total") or 0 for w in workers
            ]
            assert sum(retries) > 0, retries
            # With the lock, the detection state and the outbox on the cluster.
            assert_one_post_per_alert(settings, running.expected)
        finally:
            running.thread.join(1)
            for worker in workers:
                stop_worker(worker)
