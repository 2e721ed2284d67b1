"""Early firing on the real stack: a crisis whose window already holds the rule's level is
posted before the tick that closes its window, once; that tick confirms it and the post shows
the complete window's count (alerts.evaluation.early)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from socialpulse.app.settings import Settings
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys
from tests.conftest import start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, ticks_after, value, wait_until

RULE = "negative_mentions_high"


def test_a_crisis_is_posted_before_its_tick_and_confirmed_by_it(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    config = write_config(tmp_path / "config", run_id, threshold=5)
    worker = start_worker(config, tmp_path / "worker.log")
    settings = worker.settings
    url, every = worker.metrics_url, settings.alerts.evaluation.every
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    events_key = RedisKeys(settings.pipeline.redis.key_prefix).alert_events("acme")
    try:
        # Just after a tick was evaluated, with most of the next tick's bucket still ahead.
        while True:
            ticks_after(url, 1)
            tick = math.floor((time.time() - settings.alerts.evaluation.settle) / every) * every
            if time.time() - tick < every / 2:
                break
        # Five negatives now (the next tick's last bucket) reach the level of 5 on their own;
        # two more counted in the window's earlier buckets, arriving after the last tick read
        # them, only the next tick's complete read sees.
        now = [mention("acme", "x", "refund now", "negative") for _ in range(5)]
        ago = time.time() - tick + 5  # in the bucket before the last tick
        late = [mention("acme", "x", "still broken", "negative", ago=ago) for _ in range(2)]
        produce(settings, settings.pipeline.topics.mentions, [*now, *late])
        [post] = wait_until(
            lambda: [m for m in stub_messages(settings) if m["method"] == "chat.postMessage"],
            timeout=30,
            what="the crisis post",
        )
        assert "acme" in post["text"] and "mentions_negative 5 in the last 5m" in post["text"]
        wait_until(  # reported within a second of the round
            lambda: value(url, "socialpulse_alert_early_firings_total", rule=RULE) == 1,
            timeout=10,
            what="the early firing counted",
        )

        def confirmed() -> list[dict]:
            return [
                m
                for m in stub_messages(settings)
                if m["method"] == "chat.update" and "mentions_negative 7 in" in m["text"]
            ]

        [update] = wait_until(confirmed, timeout=30, what="the post showing the tick's count")
        assert update["ts"] == post["ts"]
        # One firing sent (counted once), confirmed at the same tick; no second post, no reply.
        fired = [
            (e["event"], e["at"], e["value"], e.get("confirms", False))
            for e in (json.loads(fields["event"]) for _, fields in client.xrange(events_key))
        ]
        assert fired == [("fired", tick + every, 5, False), ("fired", tick + every, 7, True)]
        assert value(url, "socialpulse_alert_events_total", rule=RULE, severity="critical",
                     event="fired") == 1  # fmt: skip
        posts = [m for m in stub_messages(settings) if m["method"] == "chat.postMessage"]
        assert len(posts) == 1
    finally:
        stop_worker(worker, hard=True)
