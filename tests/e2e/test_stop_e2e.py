"""Stopping is bounded, on the real stack: a worker sent SIGTERM mid-stream while Redis is
down, or while the Kafka broker is frozen, ends within STOP_WITHIN (10 s) seconds, and it
commits only what it counted: a worker started afterwards brings every count to exactly what
the stream sent, nothing lost and nothing twice."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.shutdown import STOP_WITHIN
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.stack.services import build_services
from tests.conftest import Worker, start_worker, stop_worker, write_config
from tests.e2e.helpers.reading import wait_until
from tests.e2e.helpers.services import service
from tests.e2e.helpers.streaming import BRANDS, assert_counted_exactly, start_stream

# It stops Redis and freezes the broker: it runs alone (see the Makefile).
pytestmark = pytest.mark.serial

EVENTS, RATE = 3000, 300  # 10 s of stream
# The signal's delivery, the watchdog's own tick and the exit itself: well under a second.
MARGIN = 1.5


@pytest.fixture
def stoppable(stack: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Path, Worker]]:
    """A worker on its own topics (commits every 30 s, so a stop has uncommitted counts to
    lose if it were careless); every service of the stack is running again afterwards."""
    folder = write_config(
        tmp_path / "config", uuid.uuid4().hex[:10], brands=BRANDS, worker={"commit_interval": 30}
    )
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        yield settings, folder, worker
    finally:
        stop_worker(worker, hard=True)
        kafka = service(settings, "kafka").pid()
        if kafka is not None:
            os.kill(kafka, signal.SIGCONT)
        for s in build_services(settings):
            s.start()


def seconds_to_exit(worker: Worker) -> float:
    """SIGTERM the worker and measure how long it takes to end (fails past a minute)."""
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(60)
    return time.monotonic() - started


def test_sigterm_while_redis_is_down_ends_in_time_and_loses_nothing(stoppable) -> None:
    settings, folder, worker = stoppable
    redis_service = service(settings, "redis")
    running = start_stream(settings, EVENTS, RATE)
    time.sleep(3)
    redis_service.stop()
    wait_until(lambda: "Redis unavailable" in worker.log_text(), what="the worker to retry")
    took = seconds_to_exit(worker)
    assert took <= STOP_WITHIN + MARGIN, worker.log_text()[-3000:]
    assert worker.process.returncode == 0
    assert "stopping (signal SIGTERM): at most 10 s" in worker.log_text()
    redis_service.start()
    again = start_worker(folder, folder.parent / "worker-again.log")
    try:
        assert_counted_exactly(settings, running)
    finally:
        stop_worker(again)


def test_sigterm_while_the_broker_is_frozen_ends_in_time_and_loses_nothing(stoppable) -> None:
    settings, folder, worker = stoppable
    kafka = service(settings, "kafka")
    pid = kafka.pid()
    assert pid is not None
    running = start_stream(settings, EVENTS, RATE)
    time.sleep(3)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(2)  # the worker's fetches and commits now hang on the broker
        took = seconds_to_exit(worker)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took <= STOP_WITHIN + MARGIN, worker.log_text()[-3000:]
    assert worker.process.returncode == 0
    again = start_worker(folder, folder.parent / "worker-again.log")
    try:
        assert_counted_exactly(settings, running)
    finally:
        stop_worker(again)
