"""``socialpulse bench latency``: seconds from a crisis' first event to its Slack post.

On a running stack: one real worker on its own topics, key prefix and Slack channel (the stack's
Slack stub), a background stream of ordinary mentions and interactions over the shipped brands,
and, one after another, ``--crises`` crises: each a burst of negative mentions for a brand of its
own (so each opens an incident of its own), sent over ``BURST_SECONDS``, well past the shipped
``negative_mentions_high`` level. The latency is from the crisis' first event leaving the
producer to the incident's post arriving at the stub (polled every 50 ms), so it holds the
stream, the counting, the evaluation grid (``alerts.evaluation.every`` and ``settle``), the
incident round and the Slack outbox. Crises start at random phases of the grid.

It runs once with early firing (``alerts.evaluation.early``, the default) and once on the grid
alone, one after the other in the same run (``--firing`` picks), and prints each crisis'
seconds, then p50, p99 and the largest per mode, and one JSON line.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ingest.event_producer import EventProducer, kafka_producer
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.bench import isolated_config, start_worker

BURST = 120  # negative mentions: the shipped critical level is 80 in 5 minutes
BURST_SECONDS = 2.0


def _config(settings: Settings, folder: Path, crises: int, early: bool) -> Settings:
    run = uuid.uuid4().hex[:8]
    isolated_config(settings, folder, run)
    brands = yaml.safe_load((folder / "brands.yaml").read_text())
    brands["brands"] += [
        {"id": f"crisis{i:02d}", "name": f"Crisis {i}", "platforms": ["x"]} for i in range(crises)
    ]
    (folder / "brands.yaml").write_text(yaml.safe_dump(brands, allow_unicode=True))
    alerts = yaml.safe_load((folder / "alerts.yaml").read_text())
    alerts["slack"]["channel"] = f"#bench-{run}"
    incidents = alerts.setdefault("incidents", {})
    incidents["routes"] = []
    incidents.pop("quiet_hours", None)  # a crisis at night would wait for the morning
    alerts["targets"] = []
    alerts.setdefault("evaluation", {})["early"] = early
    (folder / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    return load_settings(folder)


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _background(settings: Settings, rate: float, stop: threading.Event) -> None:
    rng = random.Random(5)
    producer = EventProducer(kafka_producer(settings.pipeline.kafka, "socialpulse-bench", 5), 50)
    everyone = [b for b in settings.brands.brands if not b.id.startswith("crisis")]
    start, sent = time.monotonic(), 0
    while not stop.is_set():
        brand = rng.choice(everyone)
        event = {"id": f"m-{uuid.uuid4().hex}", "ts": _timestamp(time.time()), "brand": brand.id,
                 "platform": rng.choice(brand.platforms), "author": f"@u{rng.randint(1, 10**6)}",
                 "text": "fine", "sentiment": rng.choice(["positive", "neutral"])}  # fmt: skip
        producer.send(settings.pipeline.topics.mentions, event)
        sent += 1
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            producer.send_due()
            time.sleep(ahead)
    producer.close(60)


def _posted(settings: Settings, brand_name: str) -> bool:
    stub = settings.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
    query = urllib.parse.urlencode({"channel": settings.alerts.slack.channel})
    with urllib.request.urlopen(f"{stub}/stub/messages?{query}", timeout=5) as answer:
        messages = json.load(answer)["messages"]
    return any(brand_name in json.dumps(m) for m in messages)


def _crisis(settings: Settings, index: int, timeout: float) -> float | None:
    """Send one crisis; the seconds until its post, or None if none came within ``timeout``."""
    producer = EventProducer(kafka_producer(settings.pipeline.kafka, "socialpulse-bench", 0), 1)
    brand = f"crisis{index:02d}"
    started = time.time()
    for n in range(BURST):
        event = {"id": f"c-{uuid.uuid4().hex}", "ts": _timestamp(time.time()), "brand": brand,
                 "platform": "x", "author": f"@angry{index}-{n}", "text": "worst service ever",
                 "sentiment": "negative"}  # fmt: skip
        producer.send(settings.pipeline.topics.mentions, event)
        producer.send_due()
        time.sleep(BURST_SECONDS / BURST)
    producer.close(30)
    while time.time() - started < timeout:
        if _posted(settings, f"Crisis {index}"):
            return time.time() - started
        time.sleep(0.05)
    return None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    settings: Settings,
    crises: int,
    rate: float,
    warmup: float,
    firing: Sequence[str] = ("early", "grid"),
) -> dict[str, Any]:
    """Run the crises once per firing mode and print the figures (and one JSON line)."""
    results = {mode: _run(settings, crises, rate, warmup, mode == "early") for mode in firing}
    print(json.dumps({"latency": results}))
    return results


def _run(
    settings: Settings, crises: int, rate: float, warmup: float, early: bool
) -> dict[str, Any]:
    """One mode's crises, one after another."""
    rng = random.Random(11)
    mode = "early firing" if early else "grid alone"
    print(f"-- {mode}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        bench = _config(settings, Path(folder), crises, early)
        ensure_topics(bench.pipeline.kafka, bench.pipeline.topics)
        worker = start_worker(bench, Path(folder) / "worker.log", answer_within=30)
        stop = threading.Event()
        stream = threading.Thread(target=_background, args=(bench, rate, stop), daemon=True)
        stream.start()
        seconds: list[float] = []
        missed = 0
        try:
            time.sleep(warmup)
            every = bench.alerts.evaluation.every
            for index in range(crises):
                time.sleep(rng.uniform(0, every))  # a random phase of the evaluation grid
                took = _crisis(bench, index, timeout=60)
                if took is None:
                    missed += 1
                    print(f"crisis {index}: no Slack post within 60 s", flush=True)
                else:
                    seconds.append(took)
                    print(f"crisis {index}: {took:.2f} s", flush=True)
        finally:
            stop.set()
            stream.join(90)
            worker.terminate()
            worker.wait(60)
    evaluation = bench.alerts.evaluation
    result: dict[str, Any] = {
        "crises": crises,
        "missed": missed,
        "background_events_per_second": rate,
        "evaluation_every_seconds": evaluation.every,
        "settle_seconds": evaluation.settle,
        "early": early,
    }
    if seconds:
        result |= {
            "p50_seconds": statistics.median(seconds),
            "p99_seconds": _quantile(seconds, 0.99),
            "max_seconds": max(seconds),
        }
        print(f"\ncrisis to Slack post, {len(seconds)} crises under {rate:g} events/s: "
              f"p50 {result['p50_seconds']:.2f} s, p99 {result['p99_seconds']:.2f} s, "
              f"max {result['max_seconds']:.2f} s (grid {evaluation.every} s, "
              f"settle {evaluation.settle} s, {mode})\n")  # fmt: skip
    return result
