"""Live rule evaluation on the real stack: the worker's firings equal the backtest's on the same
events, alerts reach Slack within seconds, and baselines survive a worker restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import redis

from alerts.detection.backtest import iso
from alerts.detection.store import parse_state
from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.topics import ensure_topics
from tests.conftest import ROOT, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, wait_until

BRANDS = [{"id": "acme", "name": "Acme Coffee", "platforms": ["x", "instagram"]}]
RULES = [
    {
        "name": "negatives_high",
        "kind": "threshold",
        "kpi": "mentions_negative",
        "window": "1m",
        "value": 6,
        "clear_value": 2,
        "for": "10s",
        "severity": "critical",
    },
    {
        "name": "mentions_jump",
        "kind": "rate_of_change",
        "kpi": "mentions",
        "window": "1m",
        "over": "30s",
        "percent": 150,
        "min_volume": 10,
    },
    {
        "name": "mentions_unusual",
        "kind": "deviation",
        "kpi": "mentions",
        "window": "1m",
        "z": 4,
        "min_volume": 5,
    },
]
# Baselines learn every tick and are trusted after a minute, so a test can watch them work.
BASELINES = {"update_every": "10s", "warmup": "1m"}


def detection(settings: Settings) -> dict[str, str]:
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    return dict(client.hgetall(RedisKeys(settings.pipeline.redis.key_prefix).detection("acme")))


def live_firings(settings: Settings) -> list[tuple[str, str, str, str | None]]:
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    stream = RedisKeys(settings.pipeline.redis.key_prefix).alert_events("acme")
    opened: dict[tuple[str, str], str] = {}
    pairs = []
    for _, fields in client.xrange(stream):
        event = json.loads(fields["event"])
        key = (event["rule"], event["platform"])
        if event["event"] == "fired":
            opened[key] = iso(event["at"])
        else:
            pairs.append((*key, opened.pop(key), iso(event["at"])))
    pairs.extend((*key, at, None) for key, at in opened.items())
    return sorted(pairs, key=lambda p: (p[2], p[0], p[1]))


def test_live_firings_equal_the_backtest_and_baselines_survive_a_restart(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    config = write_config(
        tmp_path / "config", run_id, brands=BRANDS, rules=RULES, alerts={"baselines": BASELINES}
    )
    worker = start_worker(config, tmp_path / "worker.log")
    settings = worker.settings
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    topic = settings.pipeline.topics.mentions
    recorded: list[dict] = []
    try:
        # 90 s of a steady stream (2 a second on x), with a negative burst at 60 s: 12 negative
        # mentions among 30 within two seconds.
        start = time.time()
        burst_done = False
        while time.time() - start < 90:
            batch = [mention("acme", "x", "ordinary coffee", "neutral") for _ in range(2)]
            if not burst_done and time.time() - start >= 60:
                batch += [mention("acme", "x", "awful, burnt", "negative") for _ in range(12)]
                batch += [mention("acme", "x", "a coffee", "neutral") for _ in range(18)]
                burst_done = True
            produce(settings, topic, batch)
            recorded += batch
            time.sleep(max(0.0, 1 - (time.time() - start) % 1))
        [message] = wait_until(
            lambda: [m for m in stub_messages(settings) if "negatives_high" in m["text"]],
            timeout=40,
            what="the negatives_high alert in Slack",
        )
        # One surge, one page: the burst's jump opened the incident, and the threshold rule's
        # firing joined it in its thread, raising the severity.
        assert message["text"].startswith("Severity rose to critical (firing ")
        assert message["text"].endswith(
            "mentions_negative 12 in the last 1m (threshold rule negatives_high)"
        )
        assert message.get("thread_ts")
        posts = [
            m
            for m in stub_messages(settings)
            if m["method"] == "chat.postMessage" and not m.get("thread_ts")
        ]
        assert len(posts) == 1
        assert posts[0]["text"].startswith("[WARNING] Acme Coffee (acme) on x: mentions ")
        # Let the burst age out of the 1m window so the alerts clear, then compare.
        last_event = max(time.time(), start + 90)
        wait_until(
            lambda: float(detection(settings).get("cursor", 0)) >= last_event + 70,
            timeout=120,
            what="ticks past the burst",
        )
        state = detection(settings)
        live = live_firings(settings)
        events_file = tmp_path / "events.jsonl"
        events_file.write_text("".join(json.dumps(e) + "\n" for e in recorded))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "socialpulse.cli",
                "--config",
                str(config),
                "backtest",
                str(events_file),
                "--format",
                "json",
                "--firings",
                "--start",
                state["started"],
                "--end",
                state["cursor"],
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        offline = [json.loads(line) for line in done.stdout.splitlines()]
        assert [(f["rule"], f["platform"], f["fired_at"], f["cleared_at"]) for f in offline] == live
        rules_fired = {(rule, platform) for rule, platform, _, _ in live}
        assert ("negatives_high", "x") in rules_fired
        assert ("mentions_jump", "x") in rules_fired
        assert all(cleared is not None for *_, cleared in live)

        # Restart: the baseline goes on from what it had learned, not from nothing.
        before = parse_state(state)
        learned = before.baselines["mentions|60|x"]
        stop_worker(worker)
        time.sleep(12)
        worker = start_worker(config, tmp_path / "worker2.log")
        wait_until(
            lambda: float(detection(settings)["cursor"]) > float(state["cursor"]) + 20,
            timeout=60,
            what="the restarted worker's ticks",
        )
        after = parse_state(detection(settings))
        assert after.started == before.started
        assert after.baselines["mentions|60|x"]["updates"] > learned["updates"]
        # Missed ticks were caught up: one update per 10 s tick, none skipped, none twice.
        gap = (float(after.cursor or 0) - float(before.cursor or 0)) / 10
        assert after.baselines["mentions|60|x"]["updates"] == learned["updates"] + gap
    finally:
        stop_worker(worker)
