"""The alert evaluation's own process, on the real stack: the worker starts it, serves its
metrics, starts it again when it dies (and it evaluates and posts as before), and it never
outlives the worker: a worker killed with SIGKILL leaves no evaluator behind, and the
evaluation lock is given back rather than held until it expires."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from socialpulse.app.evaluator import evaluator_pids
from socialpulse.app.settings import Settings
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys
from tests.conftest import start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, ticks_after, value, wait_until


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_evaluator_is_restarted_and_never_outlives_its_worker(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    config = write_config(tmp_path / "config", run_id, threshold=5)
    worker = start_worker(config, tmp_path / "worker.log")
    settings = worker.settings
    url = worker.metrics_url
    lock = RedisKeys(settings.pipeline.redis.key_prefix).evaluation_lock()
    client = redis_client(settings.pipeline.redis)
    try:
        [first] = evaluator_pids(worker.process.pid)
        ticks_after(url, 1)  # it evaluates, and its metrics reach the worker's /metrics
        assert value(url, "socialpulse_alert_evaluator_restarts_total") == 0
        assert client.exists(lock) == 1

        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: value(url, "socialpulse_alert_evaluator_restarts_total") == 1,
            timeout=30,
            what="the evaluator started again",
        )
        [second] = wait_until(lambda: evaluator_pids(worker.process.pid), what="a new evaluator")
        assert second != first
        # The new one takes the lock over once the dead one's expires, then evaluates, and a
        # crisis counted meanwhile reaches Slack once.
        burst = [mention("acme", "x", "refund now", "negative") for _ in range(6)]
        produce(settings, settings.pipeline.topics.mentions, burst)
        [post] = wait_until(lambda: stub_messages(settings), timeout=90, what="the crisis post")
        assert "acme" in post["text"] and "mentions_negative 6 " in post["text"]
        assert value(url, "socialpulse_alert_evaluator_restarts_total") == 1
        assert client.get(lock) is not None

        worker.process.kill()
        worker.process.wait(10)
        wait_until(lambda: not alive(second), timeout=10, what="the orphaned evaluator's end")
        # It saw the worker gone and gave the lock back, so another worker takes over at once.
        assert client.exists(lock) == 0
        assert len(stub_messages(settings)) == 1
    finally:
        stop_worker(worker, hard=True)
