"""``socialpulse bench scale``: what one worker and one Prometheus cost per brand.

On a running stack, for each brand count N (default 10, 100 and 1,000): N configured brands
with 3 to 10 platforms each, one real worker on its own topics, group and key prefix, a live
stream of mentions and interactions over all of them at a fixed rate, and, once the stream
has run a while:

- /metrics: answer time (median of 3 scrapes), size and series count, with every rolling
  window exported as gauges (the default), with only the window gauges the boards read
  (``metrics.gauges: boards``; the boards derive the rest from the running totals) and with
  ``metrics.windows: []`` (the running totals only);
- Redis memory per brand (used_memory grown over the run, divided by N);
- the alert evaluation's seconds per round (socialpulse_alert_evaluation_seconds: the mean and
  the largest bucket reached), against its 10 s grid, and what the last computation of the
  boards' gauges took in the same process (socialpulse_board_gauges_seconds);
- the worker's resident memory, and its alert evaluation process'.

With ``--workers W``, W workers of one consumer group share the brands (each shows on /metrics
the brands of its Kafka partitions, socialpulse.core.brand_partitions): the scrape figure is
the slowest worker's, the sizes and series are all workers' together (what Prometheus stores),
and memory is the largest worker's.

Prints a table per N and, last, one JSON line with every figure.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from ingest.event_producer import EventProducer, kafka_producer
from socialpulse.app.evaluator import evaluator_pids
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.connections import redis_client
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.bench import free_port, isolated_config, start_worker

PLATFORMS = ["x", "instagram", "facebook", "linkedin", "tiktok", "youtube", "weibo", "wechat",
             "douyin", "xiaohongshu"]  # fmt: skip


def brands(count: int) -> list[dict[str, Any]]:
    """``count`` brands with 3 to 10 platforms each (the same for a given count)."""
    return [
        {"id": f"b{i:04d}", "name": f"Brand {i}", "platforms": PLATFORMS[: 3 + i % 8]}
        for i in range(count)
    ]


def _config(
    settings: Settings,
    folder: Path,
    count: int,
    metrics: dict[str, Any],
    export_brands: str = "owned",
) -> Settings:
    run = uuid.uuid4().hex[:8]
    isolated_config(settings, folder, run)
    (folder / "brands.yaml").write_text(yaml.safe_dump({"brands": brands(count)}))
    pipeline = yaml.safe_load((folder / "socialpulse.yaml").read_text())
    pipeline["metrics"]["campaigns"]["brands"] = []
    pipeline["metrics"].update(metrics)
    pipeline["metrics"]["export_brands"] = export_brands
    (folder / "socialpulse.yaml").write_text(yaml.safe_dump(pipeline))
    # The shipped rules for every brand; what names the shipped brands goes.
    alerts = yaml.safe_load((folder / "alerts.yaml").read_text())
    alerts["targets"] = []
    alerts.setdefault("incidents", {})["routes"] = []
    (folder / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    return load_settings(folder)


def _stream(settings: Settings, rate: float, stop: threading.Event) -> None:
    # Mentions and counted interactions over every brand and platform, in envelopes of 100.
    rng = random.Random(3)
    producer = EventProducer(kafka_producer(settings.pipeline.kafka, "socialpulse-bench", 5), 100)
    topics = settings.pipeline.topics
    start, sent = time.monotonic(), 0
    everyone = settings.brands.brands
    while not stop.is_set():
        brand = rng.choice(everyone)
        platform = rng.choice(brand.platforms)
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        if rng.random() < 0.4:
            event: dict[str, Any] = {"id": f"m-{uuid.uuid4().hex}", "ts": ts, "brand": brand.id,
                                     "platform": platform, "author": f"@u{rng.randint(1, 10**5)}",
                                     "text": "love it", "sentiment": rng.choice(
                                         ["positive", "neutral", "negative"])}  # fmt: skip
            producer.send(topics.mentions, event)
        else:
            kind = rng.choice(["like", "comment", "share", "click"])
            event = {
                "id": f"i-{uuid.uuid4().hex}",
                "ts": ts,
                "brand": brand.id,
                "platform": platform,
                "kind": kind,
                "content_id": f"p{rng.randint(1, 50)}",
                "user_id": f"u{rng.randint(1, 10**5)}",
                "count": rng.randint(1, 5),
            }
            producer.send(topics.interactions, event)
        sent += 1
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            producer.send_due()
            time.sleep(ahead)
    producer.close(60)


def _scrape(url: str) -> tuple[float, int, int, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as answer:
        body = answer.read().decode()
    seconds = time.perf_counter() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return seconds, len(body), series, body


def _evaluation(body: str) -> tuple[float | None, str | None]:
    """Mean seconds of an evaluation round, and the smallest bucket holding them all."""
    total = count = None
    top = None
    for line in body.splitlines():
        if line.startswith("socialpulse_alert_evaluation_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("socialpulse_alert_evaluation_seconds_count"):
            count = float(line.split()[-1])
    for line in body.splitlines():
        if line.startswith("socialpulse_alert_evaluation_seconds_bucket") and count:
            le = line.split('le="')[1].split('"')[0]
            if float(line.split()[-1]) >= count and top is None:
                top = le
    return (total / count if total is not None and count else None), top


def _gauges_seconds(body: str) -> float | None:
    """What the last computation of the boards' gauges took (metrics.gauges: boards)."""
    for line in body.splitlines():
        if line.startswith("socialpulse_board_gauges_seconds "):
            return float(line.split()[-1])
    return None


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _evaluator_rss_mb(worker: int) -> float:
    """The resident memory of the worker's alert evaluation process."""
    pids = evaluator_pids(worker)
    return _rss_mb(pids[0]) if pids else float("nan")


# What each mode sets in socialpulse.yaml's metrics section.
MODES: dict[str, dict[str, Any]] = {
    "all windows": {"gauges": "all"},
    "boards": {"gauges": "boards"},
    "totals only": {"windows": []},
}


def measure(
    settings: Settings,
    count: int,
    rate: float,
    seconds: float,
    modes: list[str],
    workers: int = 1,
    export_brands: str = "owned",
) -> dict[str, Any]:
    """One brand count's figures, with every window as gauges and with the totals only, with
    ``workers`` workers in the consumer group, exporting ``export_brands``."""
    figures: dict[str, Any] = {"brands": count, "workers": workers, "export_brands": export_brands}
    client = redis_client(settings.pipeline.redis)
    for mode in modes:
        with tempfile.TemporaryDirectory() as folder:
            bench = _config(settings, Path(folder), count, MODES[mode], export_brands)
            ensure_topics(bench.pipeline.kafka, bench.pipeline.topics)
            before = int(client.info("memory")["used_memory"])
            w = bench.pipeline.worker
            ports = [(w.metrics_port, 0)] + [(free_port(), free_port()) for _ in range(1, workers)]
            started = [
                start_worker(
                    bench,
                    Path(folder) / f"worker-{i}.log",
                    answer_within=300,
                    ports=None if i == 0 else pair,
                )
                for i, pair in enumerate(ports)
            ]
            stop = threading.Event()
            producer = threading.Thread(target=_stream, args=(bench, rate, stop), daemon=True)
            producer.start()
            try:
                time.sleep(seconds)
                urls = [f"http://{w.metrics_host}:{port}/metrics" for port, _ in ports]
                scrapes = [[_scrape(url) for _ in range(3)] for url in urls]
                # The evaluation runs where the lock is: the worker whose rounds have a count.
                evaluated = [_evaluation(each[-1][3]) for each in scrapes]
                mean, top = next((e for e in evaluated if e[0] is not None), (None, None))
                pairs = sum(len(b.platforms) + 1 for b in bench.brands.brands)
                series = sum(each[-1][2] for each in scrapes)
                row = {
                    "scrape_seconds": max(statistics.median(s[0] for s in e) for e in scrapes),
                    "scrape_mb": sum(each[-1][1] for each in scrapes) / 1e6,
                    "series": series,
                    "series_per_worker": [each[-1][2] for each in scrapes],
                    "series_per_brand_platform": series / pairs,
                    "evaluation_seconds_mean": mean,
                    "evaluation_seconds_within": top,
                    # The slowest worker's: each computes its own brands' gauges.
                    "board_gauges_seconds": max(
                        (g for each in scrapes if (g := _gauges_seconds(each[-1][3])) is not None),
                        default=None,
                    ),
                    "worker_rss_mb": max(_rss_mb(worker.pid) for worker in started),
                    "evaluator_rss_mb": max(_evaluator_rss_mb(worker.pid) for worker in started),
                    "redis_kb_per_brand": (int(client.info("memory")["used_memory"]) - before)
                    / count
                    / 1024,
                }
                figures[mode] = row
            finally:
                stop.set()
                producer.join(90)
                for worker in started:
                    worker.terminate()
                for worker in started:
                    worker.wait(60)
                prefix = bench.pipeline.redis.key_prefix
                for key in client.scan_iter(match=f"{prefix}:*", count=5000):
                    client.unlink(key)
    return figures


def run(
    settings: Settings,
    counts: list[int],
    rate: float,
    seconds: float,
    modes: list[str] | None = None,
    workers: int = 1,
    export_brands: str = "owned",
) -> None:
    """Measure every brand count and print the figures (a table each, then one JSON line);
    ``modes``: all-windows, boards, totals-only (all three by default); ``workers`` in one
    group, each exporting its partitions' brands (``owned``) or every brand (``all``)."""
    chosen = [m.replace("-", " ") for m in (modes or ["all-windows", "boards", "totals-only"])]
    results = []
    for count in counts:
        figures = measure(settings, count, rate, seconds, chosen, workers, export_brands)
        results.append(figures)
        print(f"\n{count} brands, {workers} worker(s) exporting {export_brands} brands, "
              f"{rate:g} events/s for {seconds:g}s before measuring")  # fmt: skip
        print(f"{'':14}{'scrape s':>10}{'MB':>8}{'series':>9}{'/brand-pl':>10}"
              f"{'eval s':>8}{'gauges s':>9}{'RSS MB':>8}{'eval MB':>8}"
              f"{'Redis KB/brand':>15}")  # fmt: skip
        for mode in chosen:
            r = figures[mode]
            shown = (
                "-"
                if r["evaluation_seconds_mean"] is None
                else f"{r['evaluation_seconds_mean']:.2f}"
            )
            gauges = (
                "-" if r["board_gauges_seconds"] is None else f"{r['board_gauges_seconds']:.2f}"
            )
            print(f"{mode:14}{r['scrape_seconds']:>10.3f}{r['scrape_mb']:>8.2f}{r['series']:>9}"
                  f"{r['series_per_brand_platform']:>10.0f}{shown:>8}{gauges:>9}"
                  f"{r['worker_rss_mb']:>8.0f}"
                  f"{r['evaluator_rss_mb']:>8.0f}"
                  f"{r['redis_kb_per_brand']:>15.1f}")  # fmt: skip
    print(json.dumps({"scale": results}))
