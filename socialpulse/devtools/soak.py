"""``socialpulse soak``: the demo stream at a fixed rate for a long time (10 minutes by default)
through one worker on its own topics, sampling the worker's /metrics every 30 s.

Reports throughput (events counted per second), p99 arrival-to-visible latency (from the
worker's histogram), consumer lag and the worker's resident memory (RSS) at the first sample
and at the end. The run passes when RSS stays within 10% of the first sample and the lag stays
below one sample interval's worth of events. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from socialpulse.app.settings import Settings
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools import simulate
from socialpulse.devtools.bench import isolated_config, start_worker

RSS_TOLERANCE = 0.10
SAMPLE_EVERY = 30.0
Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), +Inf last


@dataclass(frozen=True)
class Sample:
    """What one scrape of the worker says."""

    at: float  # seconds since the stream started
    counted: float  # events counted in Redis, all topics
    lag: float  # messages behind, all partitions
    rss: float  # bytes
    buckets: Buckets  # arrival-to-visible histogram, all topics


def parse_scrape(text: str, at: float) -> Sample:
    """The figures the soak follows, from a /metrics text."""

    def total(name: str) -> float:
        pattern = rf"^{name}(?:{{[^}}]*}})? (\S+)$"
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))

    buckets: dict[float, float] = {}
    bucket_line = r'^socialpulse_arrival_to_visible_seconds_bucket{[^}]*le="([^"]+)"[^}]*} (\S+)$'
    for le, count in re.findall(bucket_line, text, re.MULTILINE):
        bound = math.inf if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + float(count)
    return Sample(
        at,
        total("socialpulse_events_counted_total"),
        total("socialpulse_consumer_lag_messages"),
        # The worker and its alert evaluation process.
        total("process_resident_memory_bytes")
        + total("socialpulse_alert_evaluator_resident_memory_bytes"),
        sorted(buckets.items()),
    )


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets: linear within the bucket the
    rank falls in; the highest finite bound when it falls in +Inf; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def delta(later: Buckets, earlier: Buckets) -> Buckets:
    """Observations between two scrapes of the same histogram."""
    before = dict(earlier)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in later]


def verdict(samples: Sequence[Sample], rate: float) -> dict[str, float | bool | None]:
    """The run's figures and whether RSS stayed flat and lag bounded."""
    first, last = samples[0], samples[-1]
    elapsed = last.at - first.at
    max_lag = max(s.lag for s in samples)
    return {
        "rate_events_per_s": rate,
        "minutes": round(last.at / 60, 2),
        "throughput_events_per_s": round((last.counted - first.counted) / elapsed, 1)
        if elapsed > 0
        else None,
        "p99_arrival_to_visible_s": histogram_quantile(0.99, delta(last.buckets, first.buckets)),
        "max_lag_messages": max_lag,
        "end_lag_messages": last.lag,
        "rss_start_mb": round(first.rss / 2**20, 1),
        "rss_end_mb": round(last.rss / 2**20, 1),
        "rss_change": round(last.rss / first.rss - 1, 4) if first.rss else None,
        "rss_flat": bool(first.rss) and abs(last.rss / first.rss - 1) <= RSS_TOLERANCE,
        "lag_bounded": max_lag <= rate * SAMPLE_EVERY,
    }


def run(settings: Settings, rate: float, minutes: float, envelope: int) -> dict:
    """Run the soak on the running stack; print samples as they come and the summary."""
    root = Path(tempfile.mkdtemp(prefix="socialpulse-soak-"))
    soak = isolated_config(settings, root / "config", uuid.uuid4().hex[:8])
    ensure_topics(soak.pipeline.kafka, soak.pipeline.topics)
    worker = start_worker(soak, root / "worker.log")
    w = soak.pipeline.worker
    url = f"http://{w.metrics_host}:{w.metrics_port}/metrics"
    duration = minutes * 60
    print(f"soak: {rate:g} events/s for {minutes:g} min, one worker (log: {root}/worker.log)")
    producer = threading.Thread(
        target=simulate.run,
        args=(soak, rate, duration, None, None, 0, 0.0, 7, envelope),
        daemon=True,
    )
    start = time.monotonic()
    producer.start()
    samples: list[Sample] = []
    print(f"{'min':>6} {'counted':>10} {'events/s':>9} {'p99 s':>7} {'lag':>7} {'RSS MB':>7}")
    try:
        while producer.is_alive() or not samples or samples[-1].at < duration:
            time.sleep(SAMPLE_EVERY - (time.monotonic() - start) % SAMPLE_EVERY)
            with urllib.request.urlopen(url, timeout=10) as reply:
                sample = parse_scrape(reply.read().decode(), time.monotonic() - start)
            before = samples[-1] if samples else None
            speed = (sample.counted - before.counted) / (sample.at - before.at) if before else 0
            p99 = histogram_quantile(0.99, delta(sample.buckets, before.buckets if before else []))
            samples.append(sample)
            print(
                f"{sample.at / 60:>6.1f} {sample.counted:>10,.0f} {speed:>9,.0f} "
                f"{(p99 or 0):>7.3f} {sample.lag:>7,.0f} {sample.rss / 2**20:>7.1f}",
                flush=True,
            )
            if not producer.is_alive() and sample.at >= duration:
                break
    finally:
        worker.terminate()
        worker.wait(30)
    figures = verdict(samples, rate)
    print(
        f"\nsoak: {figures['throughput_events_per_s']} events/s counted, p99 arrival->visible "
        f"{figures['p99_arrival_to_visible_s']}s, max lag {figures['max_lag_messages']:.0f}, "
        f"RSS {figures['rss_start_mb']} -> {figures['rss_end_mb']} MB "
        f"({'flat' if figures['rss_flat'] else 'NOT flat'} within {RSS_TOLERANCE:.0%}), "
        f"lag {'bounded' if figures['lag_bounded'] else 'NOT bounded'}"
    )
    print(json.dumps(figures))
    return figures


__all__ = ["delta", "histogram_quantile", "parse_scrape", "run", "verdict"]
