"""Scale-out on the real stack: three workers in one consumer group on six partitions, one
joining and one leaving mid-stream. The counts are what one worker gives (exact), the work was
shared, and each alert was posted once, not once per worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.scrape_targets import worker_targets_dir
from socialpulse.core.topics import ensure_topics
from tests.conftest import free_port, start_worker, stop_worker
from tests.e2e.helpers.reading import wait_until
from tests.e2e.helpers.scale import BRANDS, consumed, counted, eight_brands_config
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
