"""Faults on the real stack, mid-stream: Redis stopped for 30 s while Slack is unreachable, and
the Kafka broker restarted. Afterwards every rolling count is exact (nothing lost, nothing
counted twice) and the one alert of the run was posted once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.stack.services import build_services
from tests.conftest import Worker, start_worker, stop_worker, write_config
from tests.e2e.helpers.reading import stub_messages, ticks_after, value, wait_until
from tests.e2e.helpers.services import service
from tests.e2e.helpers.streaming import BRANDS, Stream, assert_counted_exactly, start_stream

# It stops Redis, Kafka and the Slack stub: it runs alone (see the Makefile).
pytestmark = pytest.mark.serial

EVENTS, RATE = 6000, 300  # 20 s of stream


@pytest.fixture
def faulty(stack: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Worker]]:
    """A worker on its own topics; every service of the stack is running again afterwards."""
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10], brands=BRANDS)
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        yield settings, worker
    finally:
        stop_worker(worker)
        for s in build_services(settings):
            s.start()


def assert_exact_after(settings: Settings, running: Stream) -> None:
    assert_counted_exactly(settings, running)
    # mentions count twice (mentions + their label)
    assert sum(running.expected.values()) == EVENTS + EVENTS // 4


def test_redis_down_30s_and_slack_unreachable_mid_stream(faulty) -> None:
    settings, worker = faulty
    redis_service, slack = service(settings, "redis"), service(settings, "slack-stub")
    # Slack is gone before the stream's crisis: its alert (sent within seconds, before its
    # tick is over) can only reach Slack once it is back.
    slack.stop()
    running = start_stream(settings, EVENTS, RATE)
    time.sleep(3)
    redis_service.stop()
    in_flight = sum(running.expected.values())  # produced so far
    time.sleep(30)
    assert worker.process.poll() is None, worker.log_text()[-2000:]  # waits, does not die
    redis_service.start()
    assert_exact_after(settings, running)
    assert 0 < in_flight < sum(running.expected.values())  # Redis really stopped mid-stream
    retries = value(worker.metrics_url, "socialpulse_redis_retries_total")
    assert retries is not None and retries > 0
    assert "Redis unavailable" in worker.log_text()

    # Only globex's mentions are negative (on x): one incident, posted once Slack is back.
    slack.start()

    def posts() -> list[dict]:
        return [
            m
            for m in stub_messages(settings)
            if m["method"] == "chat.postMessage" and not m.get("thread_ts")
        ]

    [post] = wait_until(posts, timeout=60, what="the alert after Slack came back")
    assert post["text"].startswith("[CRITICAL] Globex (globex) on x: mentions_negative ")
    ticks_after(worker.metrics_url)  # a second post, if any, would come from these
    assert len(posts()) == 1
    failed = value(
        worker.metrics_url, "socialpulse_slack_deliveries_total", kind="post", outcome="failed"
    )
    assert failed is not None and failed >= 1  # it was tried while Slack was down


def test_kafka_broker_restarted_mid_stream(faulty) -> None:
    settings, worker = faulty
    kafka = service(settings, "kafka")
    running = start_stream(settings, EVENTS, RATE)
    time.sleep(5)
    kafka.stop()

    def consumed() -> float:
        topics = (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions)
        return sum(
            value(worker.metrics_url, "socialpulse_events_consumed_total", topic=t) or 0
            for t in topics
        )

    # The outage reaches the worker: it reads nothing while the broker is away (after what it
    # had fetched is done), and it was mid-stream.
    time.sleep(2)
    during = consumed()
    time.sleep(3)
    assert consumed() == during
    assert 0 < during < EVENTS
    kafka.start()  # waits until the broker answers
    assert worker.process.poll() is None, worker.log_text()[-2000:]
    # It reconnects by itself and reads on from where it was: every event counted once.
    assert_exact_after(settings, running)
    assert consumed() > during
