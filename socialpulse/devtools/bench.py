"""``socialpulse bench throughput``: how fast one worker turns Kafka events into KPIs in Redis.

On a running stack, in one run:

1. produces N demo events (the simulator's mix) into fresh topics;
2. the ceiling: a bare aiokafka consumer reads them all (events/s);
3. the peer, one event per message only: a Quix Streams application doing comparable work
   (benchmarks/quix_peer.py: decode, VADER, per-brand counts by platform in 10 s / 1 min /
   5 min tumbling windows in RocksDB state with changelog topics) reads the same topics;
4. one real worker (``socialpulse worker`` on its own topics, group and key prefix) processes
   them end to end into Redis (events/s), and the ratio to the ceiling;
5. latency: with a background stream at a fixed rate, probe mentions are produced one at a
   time and Redis is polled until each is counted: p50/p99 produce-to-visible seconds.

Prints a readable report; its last line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import yaml
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaProducer

from ingest.event_producer import EventProducer, kafka_producer
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.connections import kafka_security, redis_client
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.simulate import Simulator, events
from streams.counters import FILTERED, KIND_COUNTER, field
from streams.windows import bucket_start, tier_for, window_buckets

PROBE_BRAND = "benchprobe"


def isolated_config(settings: Settings, folder: Path, run: str) -> Settings:
    """A copy of the config on its own topics, consumer group, key prefix and ports."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kpis.yaml").write_text((settings.config_dir / "kpis.yaml").read_text())
    # The latency probes' own brand, so that strict mode counts them.
    brands = yaml.safe_load((settings.config_dir / "brands.yaml").read_text())
    brands["brands"].append({"id": PROBE_BRAND, "name": "Benchmark probes", "platforms": ["x"]})
    (folder / "brands.yaml").write_text(yaml.safe_dump(brands, allow_unicode=True))
    pipeline = yaml.safe_load((settings.config_dir / "socialpulse.yaml").read_text())
    pipeline["topics"] = {
        k: f"bench.{run}.{k}" for k in ("mentions", "interactions", "snapshots", "dead_letter")
    }
    pipeline["redis"]["key_prefix"] = f"bench{run}"
    pipeline["worker"].update(app_id=f"sp-bench-{run}", metrics_port=free_port())
    (folder / "socialpulse.yaml").write_text(yaml.safe_dump(pipeline))
    # Its own Slack button port, so it runs beside a demo worker.
    alerts = yaml.safe_load((settings.config_dir / "alerts.yaml").read_text())
    alerts.setdefault("incidents", {}).setdefault("interactivity", {})["port"] = free_port()
    (folder / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    return load_settings(folder)


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _produce(settings: Settings, count: int, seed: int, envelope: int) -> tuple[int, int]:
    """Produce ``count`` demo events in envelopes of ``envelope`` (1: one per message); return
    what they add to the counters ``_processed`` reads (1 an event, ``count`` for a batched
    kind such as a push's deliveries; spend and follower counts add nothing there) and how
    many Kafka messages carried them."""
    sim = Simulator(settings.brands.brands, random.Random(seed))
    producer = EventProducer(
        kafka_producer(settings.pipeline.kafka, "socialpulse-bench", 50), envelope, 5.0
    )
    topics = settings.pipeline.topics
    stream = events(sim)
    counted = 0
    for _ in range(count):
        kind, event = next(stream)
        producer.send(topics.mentions if kind == "mention" else topics.interactions, event)
        if event.get("kind") not in ("spend", "followers"):
            counted += int(event.get("count", 1))
    producer.close(120)
    return counted, producer.messages


async def _bare_consumer(settings: Settings, count: int) -> float:
    """Messages per second a bare aiokafka consumer reads ``count`` messages at."""
    topics = settings.pipeline.topics
    consumer = AIOKafkaConsumer(
        topics.mentions,
        topics.interactions,
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_security(),
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
        seen = 0
        start = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            got = sum(len(records) for records in batch.values())
            if got and start is None:
                start = time.perf_counter()
            seen += got
        return count / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


PEER = Path(__file__).resolve().parents[2] / "benchmarks" / "quix_peer.py"


def _peer(settings: Settings, messages: int, folder: Path) -> float | None:
    """Messages per second the Quix Streams peer processes ``messages`` at, on the same topics,
    from its group's assignment to its last message, as the worker is measured (None, with the
    reason printed, when quixstreams or the peer's file is not installed)."""
    import importlib.util

    if importlib.util.find_spec("quixstreams") is None or not PEER.exists():
        print("bench: no peer (pip install -e '.[dev]' in a checkout has it)", flush=True)
        return None
    topics = settings.pipeline.topics
    group = f"bench-peer-{uuid.uuid4().hex[:8]}"
    with (folder / "peer.log").open("w+") as log:
        peer = subprocess.Popen(
            [
                sys.executable,
                str(PEER),
                "--broker",
                settings.pipeline.kafka.bootstrap_servers,
                "--group",
                group,
                "--count",
                str(messages),
                "--state-dir",
                str(folder / "quix-state"),
                topics.mentions,
                topics.interactions,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            started = _assigned(settings, group, peer)
            code = peer.wait(900)
        finally:
            if peer.poll() is None:
                peer.kill()
        log.seek(0)
        lines = [line for line in log.read().splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise SystemExit(f"bench: the peer failed (exit {code}); see {folder}/peer.log")
    done = json.loads(lines[-1])
    # As the worker's: from its group's assignment to its last message, by the wall clock.
    took = float(done["last_wall"]) - started
    return done["messages"] / took if took > 0 else None


def _processed(settings: Settings, client: redis.Redis) -> int:
    """Events the worker has applied to Redis, read from Redis itself (the last 15 minutes of
    10 s buckets) with ``client``, one for the whole wait, since a new connection at each poll
    would load the machine being measured, as polling the worker's /metrics would load the
    worker."""
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    # every event adds 1 to one of these
    one_each = {"mentions", "brand_replies", FILTERED, *KIND_COUNTER.values()}
    pipe = client.pipeline(transaction=False)
    for brand in settings.brand_ids:
        for start in window_buckets(time.time(), 900, 10):
            pipe.hgetall(keys.bucket(brand, 10, start))
    return sum(
        int(float(n))
        for bucket in pipe.execute()
        for name, n in bucket.items()
        if name.partition("|")[0] in one_each
    )


def start_worker(
    settings: Settings, log: Path, answer_within: float = 2, ports: tuple[int, int] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``socialpulse worker`` on these settings; return once its /metrics answers (in
    ``answer_within`` seconds: a scrape of many brands takes longer). ``ports``: its /metrics
    and Slack button ports instead of the config's (another worker of the same group)."""
    environ = dict(os.environ)
    metrics_port = settings.pipeline.worker.metrics_port
    if ports is not None:
        metrics_port = ports[0]
        environ["SOCIALPULSE_METRICS_PORT"] = str(ports[0])
        environ["SOCIALPULSE_INTERACTIVITY_PORT"] = str(ports[1])
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialpulse.cli",
                "--config",
                str(settings.config_dir),
                "worker",
                "--loglevel",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    url = f"http://{settings.pipeline.worker.metrics_host}:{metrics_port}/metrics"
    deadline = time.monotonic() + 90 + answer_within
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"bench: the worker exited; see {log}")
        try:
            urllib.request.urlopen(url, timeout=answer_within).close()
            return worker
        except OSError:
            time.sleep(0.2)
    worker.kill()
    raise SystemExit(f"bench: the worker did not start in 90s; see {log}")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _script_seconds(client: redis.Redis) -> float:
    """Seconds Redis has spent in scripts (EVALSHA, its commands included) since its start or
    last CONFIG RESETSTAT: the count script's share of Redis' one thread."""
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("evalsha", "eval")) / 1e6


def _assigned(settings: Settings, group: str, process: subprocess.Popen[Any]) -> float:
    """The wall-clock time at which consumer group ``group`` became Stable (its partitions
    assigned: reading starts), polled every 20 ms; the worker and the peer are measured from
    it alike. Gives up when ``process`` (the worker or the peer) ends first."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers, **kafka_security()
    )
    try:
        while not any(
            g["group_id"] == group and g.get("group_state") == "Stable" for g in admin.list_groups()
        ):
            if process.poll() is not None:
                return time.time()
            time.sleep(0.02)
        return time.time()
    finally:
        admin.close()


def _worker_throughput(
    settings: Settings, count: int, units: int, worker: subprocess.Popen[bytes]
) -> tuple[float, float, float]:
    """Events/s of a worker that finds its topics full (``count`` events, ``units`` counted
    units: a push's deliveries count many), from its consumer group's assignment to the last
    unit in Redis, and the CPU seconds per event that its process and Redis' scripts
    used over the same span. From the assignment, not from the first counts in Redis: in
    envelopes a batch (up to worker.batch_bytes) holds tens of thousands of events, decoded
    and scored before its first count shows. Progress is read from Redis and the broker, not
    from the worker's /metrics, so measuring does not load the worker."""
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    try:
        started = _assigned(settings, settings.pipeline.worker.app_id, worker)
        cpu, script = _cpu_seconds(worker.pid), _script_seconds(client)
        while _processed(settings, client) < units:
            if worker.poll() is not None:
                raise SystemExit(f"bench: the worker exited (code {worker.returncode})")
            time.sleep(0.05)
        return (
            count / (time.time() - started),
            (_cpu_seconds(worker.pid) - cpu) / count,
            (_script_seconds(client) - script) / count,
        )
    finally:
        client.close()


def _latency(settings: Settings, rate: float, seconds: float, envelope: int) -> list[float]:
    """Produce-to-visible seconds of probe mentions, under a background stream at ``rate``."""
    stop = threading.Event()

    def background() -> None:
        sim = Simulator(settings.brands.brands, random.Random(7))
        producer = EventProducer(
            kafka_producer(settings.pipeline.kafka, "socialpulse-bench", 5), envelope
        )
        stream, sent, start = events(sim), 0, time.monotonic()
        topics = settings.pipeline.topics
        while not stop.is_set():
            kind, event = next(stream)
            producer.send(topics.mentions if kind == "mention" else topics.interactions, event)
            sent += 1
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        producer.close(30)

    loader = threading.Thread(target=background, daemon=True)
    loader.start()
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    tier = tier_for(min(settings.pipeline.windows.rolling)) or 10
    probe = KafkaProducer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        acks="all",
        linger_ms=0,
        **kafka_security(),
    )
    samples: list[float] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            ts = datetime.now(UTC)
            # Poll the bucket that the probe's own event time falls in.
            key = keys.bucket(PROBE_BRAND, tier, bucket_start(ts, tier))
            before = int(client.hget(key, field("mentions", "x")) or 0)
            event = {
                "id": f"probe-{uuid.uuid4().hex}",
                "ts": ts.isoformat(),
                "platform": "x",
                "brand": PROBE_BRAND,
                "author": f"@probe-{uuid.uuid4().hex[:8]}",  # not rate-limited
                "text": "probe",
                "sentiment": "neutral",
            }
            sent = time.perf_counter()
            probe.send(
                settings.pipeline.topics.mentions,
                key=PROBE_BRAND.encode(),
                value=json.dumps(event).encode(),
            )
            probe.flush()
            while int(client.hget(key, field("mentions", "x")) or 0) <= before:
                if time.perf_counter() - sent > 10:
                    break
                time.sleep(0.002)
            samples.append(time.perf_counter() - sent)
            time.sleep(0.05)
    finally:
        stop.set()
        loader.join(30)
        probe.close()
    return samples


def _rate(rate: float | None) -> str:
    return "not run" if rate is None else f"{rate:,.0f} ev/s"


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    settings: Settings,
    count: int,
    latency_rate: float,
    latency_seconds: float,
    envelope: int = 100,
    peer: bool = True,
) -> dict[str, Any]:
    """Run the benchmark on the running stack; print the report and return the figures.

    Two stream formats, each on its own topics: one event per Kafka message, and envelopes of
    ``envelope`` events per message (what the simulator produces). Each gets its bare-consumer
    ceiling (the same topics read without processing) and its worker rate; with ``peer``, the
    one-per-message topics are also read by the Quix Streams peer."""
    root = Path(tempfile.mkdtemp(prefix="socialpulse-bench-"))
    figures: dict[str, dict[str, float]] = {}
    samples: list[float] = []
    peer_rate: float | None = None
    for mode, size in (("single", 1), ("envelope", envelope)):
        folder = root / mode
        run_id = uuid.uuid4().hex[:8]
        bench = isolated_config(settings, folder / "config", run_id)
        ensure_topics(bench.pipeline.kafka, bench.pipeline.topics)
        print(
            f"bench [{mode}]: producing {count:,} demo events, {size} per message, "
            f"into bench.{run_id}.* ...",
            flush=True,
        )
        counted, messages = _produce(bench, count, seed=1, envelope=size)
        print(f"bench [{mode}]: bare aiokafka consumer (the ceiling) ...", flush=True)
        bare = asyncio.run(_bare_consumer(bench, messages)) * count / messages
        if peer and size == 1:
            print(f"bench [{mode}]: the Quix Streams peer (log: {folder}/peer.log) ...", flush=True)
            folder.mkdir(parents=True, exist_ok=True)
            peer_rate = _peer(bench, messages, folder)
        print(f"bench [{mode}]: one worker into Redis (log: {folder}/worker.log) ...", flush=True)
        worker = start_worker(bench, folder / "worker.log")
        try:
            # What each event costs the worker's process and Redis' scripts in CPU: on a
            # machine of few cores these, not the framework, bound the rate.
            rate, cpu, script = _worker_throughput(bench, count, counted, worker)
            cpu, script = cpu * 1e6, script * 1e6
            if mode == "envelope":  # the same worker, warm, on the same topics
                print(
                    f"bench: latency at {latency_rate:,.0f} events/s, {latency_seconds:.0f}s ...",
                    flush=True,
                )
                samples = _latency(bench, latency_rate, latency_seconds, envelope)
        finally:
            worker.terminate()
            worker.wait(30)
        figures[mode] = {"bare": bare, "worker": rate, "ratio": rate / bare, "cpu_us": cpu,
                         "script_us": script}  # fmt: skip
    one, env = figures["single"], figures["envelope"]
    p50, p99 = statistics.median(samples), _quantile(samples, 0.99)
    result = {
        "events": count,
        "envelope_events": envelope,
        "bare_consumer_events_per_s": round(env["bare"]),
        "worker_events_per_s": round(env["worker"]),
        "ratio": round(env["ratio"], 3),
        "single_bare_consumer_events_per_s": round(one["bare"]),
        "single_worker_events_per_s": round(one["worker"]),
        "single_ratio": round(one["ratio"], 3),
        "worker_cpu_us_per_event": round(env["cpu_us"], 1),
        "redis_script_us_per_event": round(env["script_us"], 1),
        "single_worker_cpu_us_per_event": round(one["cpu_us"], 1),
        "single_redis_script_us_per_event": round(one["script_us"], 1),
        "single_peer_events_per_s": None if peer_rate is None else round(peer_rate),
        "single_worker_to_peer": None if peer_rate is None else round(one["worker"] / peer_rate, 3),
        "latency_rate_events_per_s": latency_rate,
        "latency_probes": len(samples),
        "p50_produce_to_visible_s": round(p50, 4),
        "p99_produce_to_visible_s": round(p99, 4),
    }
    print(f"""
SocialPulse throughput benchmark ({count:,} demo events per format, one worker, this machine)
                         envelopes of {envelope:<5}  one event per message
  bare aiokafka consumer {env["bare"]:>10,.0f} ev/s  {one["bare"]:>10,.0f} ev/s  (ceiling)
  SocialPulse worker     {env["worker"]:>10,.0f} ev/s  {one["worker"]:>10,.0f} ev/s  (into Redis)
  ratio                  {env["ratio"]:>10.3f}       {one["ratio"]:>10.3f}
  worker CPU an event    {env["cpu_us"]:>10.1f} us     {one["cpu_us"]:>10.1f} us   (its process)
  Redis scripts an event {env["script_us"]:>10.1f} us     {one["script_us"]:>10.1f} us   (on one \
thread: {1e6 / max(env["script_us"], 1e-9):,.0f} ev/s at most)
  Quix Streams peer                       {_rate(peer_rate):>15}  (same topics)
  produce -> visible in Redis at {latency_rate:,.0f} events/s ({len(samples)} probes, envelopes):
    p50 {p50:.3f}s   p99 {p99:.3f}s""")
    print(json.dumps(result))
    return result
