"""The dev tools' commands of ``socialpulse``: stack, simulate, demo, bench, soak."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialpulse.app.settings import Settings
from socialpulse.core.paths import state_dir
from socialpulse.devtools.stack.process import StackError

if TYPE_CHECKING:
    from socialpulse.devtools.scenarios import Scenario


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse stack up|down|status."""
    from socialpulse.devtools.stack import services

    if args.action == "up":
        for line in services.up(settings):
            print(line, flush=True)
        print(f"stack: data and logs in {state_dir()}")
    elif args.action == "down":
        for line in services.down(settings):
            print(line)
    else:
        rows = services.status(settings)
        for name, state, port, pid in rows:
            print(f"{name:<11} {state:<10} 127.0.0.1:{port:<6} pid {pid or '-'}")
        return 0 if all(state == "running" for _, state, _, _ in rows) else 3
    return 0


def _scenario(args: argparse.Namespace, settings: Settings) -> Scenario | None:
    """The --scenario NAME[:BRAND[:PLATFORM]] of simulate (default: the first brand and its
    first platform)."""
    from socialpulse.devtools.scenarios import SCENARIOS, Scenario

    if not args.scenario:
        return None
    name, _, rest = args.scenario.partition(":")
    brand_id, _, platform = rest.partition(":")
    brands = {b.id: b for b in settings.brands.brands}
    brand = brands.get(brand_id) if brand_id else settings.brands.brands[0]
    if name not in SCENARIOS or brand is None:
        raise SystemExit(
            f"--scenario {args.scenario!r}: use NAME[:BRAND[:PLATFORM]] with NAME one of "
            f"{', '.join(SCENARIOS)} and BRAND one of {', '.join(brands)}"
        )
    return Scenario(name, brand.id, platform or brand.platforms[0], args.scenario_after,
                    args.scenario_for)  # fmt: skip


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse simulate: produce demo events (optionally a scenario or a negative burst)."""
    from socialpulse.core.topics import ensure_topics
    from socialpulse.devtools import simulate

    scenario = _scenario(args, settings)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    brand, _, platform = (args.burst or "").partition(":")
    sent = simulate.run(
        settings,
        args.rate,
        args.duration,
        brand or None,
        platform or None,
        args.burst_size,
        args.burst_after,
        args.seed,
        args.envelope,
        scenario=scenario,
        cycle=not args.flat,
        poll_every=args.poll_every,
    )
    print(f"simulate: sent {sent} events")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse bench throughput (worker events/s vs a bare consumer, and latency), scale
    (what a worker and Prometheus cost per brand, socialpulse.devtools.bench_scale) or latency
    (a crisis' first event to its Slack post, socialpulse.devtools.bench_latency)."""
    from socialpulse.devtools import bench

    if args.what == "scale":
        from socialpulse.devtools import bench_scale

        bench_scale.run(
            settings,
            args.brands,
            args.rate,
            args.seconds,
            args.modes,
            args.workers,
            args.export_brands,
        )
        return 0
    if args.what == "latency":
        from socialpulse.devtools import bench_latency

        bench_latency.run(settings, args.crises, args.background_rate, args.warmup, args.firing)
        return 0
    bench.run(
        settings, args.events, args.latency_rate, args.latency_seconds, args.envelope, args.peer
    )
    return 0


def cmd_soak(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse soak: a fixed-rate demo stream for minutes; throughput, p99, lag, RSS."""
    from socialpulse.devtools import soak

    figures = soak.run(settings, args.rate, args.minutes, args.envelope)
    return 0 if figures["rss_flat"] and figures["lag_bounded"] else 1


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as response:
        return dict(json.load(response))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse demo: stack, worker, demo stream with a crisis; says where to look."""
    from socialpulse.core.topics import ensure_topics
    from socialpulse.devtools import simulate
    from socialpulse.devtools.scenarios import Scenario
    from socialpulse.devtools.stack import services

    for line in services.up(settings):
        print(line, flush=True)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    print(_warm_start(settings, args.rate), flush=True)
    worker_cfg = settings.pipeline.worker
    log_path = state_dir() / "worker.log"
    metrics_url = f"http://{worker_cfg.metrics_host}:{worker_cfg.metrics_port}/metrics"
    stub = settings.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "socialpulse.cli", "worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        _wait_for(metrics_url, worker, log_path)
        brand = settings.brands.brands[0]
        print(
            f"""
SocialPulse is running.
  worker /metrics    {metrics_url}   (log: {log_path})
  Prometheus         {settings.pipeline.prometheus.url}/graph?g0.expr=socialpulse_mentions
  Slack stub         {stub}/stub/messages   (channels: alerts.yaml slack and incidents.routes)
  Grafana boards     docker compose up (see README); without Docker, PNGs of them from this
                     Prometheus: .venv/bin/socialpulse boards preview  (into .stack/boards/)
Streaming about {args.rate:g} events/s for {", ".join(settings.brand_ids)}
(busier at lunch and in the evening). After {args.burst_after:g}s, a crisis for {brand.id} on \
{brand.platforms[0]}: a viral negative post,
{args.burst_size} negative mentions and a sustained negative surge.
Ctrl-C stops the worker and the stream; `socialpulse stack down` stops the services.
""",
            flush=True,
        )
        sim = threading.Thread(
            target=simulate.run,
            daemon=True,
            args=(
                settings,
                args.rate,
                args.duration,
                None,
                None,
                args.burst_size,
                args.burst_after,
                None,
                args.envelope,
            ),
            kwargs={
                "scenario": Scenario("crisis", brand.id, brand.platforms[0], args.burst_after),
                "cycle": True,
            },
        )
        sim.start()
        seen = len(_get_json(f"{stub}/stub/messages")["messages"])
        while sim.is_alive():
            sim.join(2)
            messages = _get_json(f"{stub}/stub/messages")["messages"]
            for message in messages[seen:]:
                print(_demo_line(message, settings), flush=True)
            seen = len(messages)
            if worker.poll() is not None:
                print(f"worker exited with code {worker.returncode}; see {log_path}")
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    return 0


def _warm_start(settings: Settings, rate: float) -> str:
    """Hand the shipped warm baselines over (when the stream runs at their rate); say what."""
    from alerts.detection.configured import detector_for
    from socialpulse.app.history import hand_over
    from socialpulse.core.connections import redis_client
    from socialpulse.core.redis_keys import RedisKeys
    from socialpulse.devtools import demo_baseline

    built_for, states = demo_baseline.load()
    if rate != built_for:
        return (
            f"warm start: none (the shipped baselines are for --rate {built_for:g}); the adaptive "
            "rules learn for a day first, the threshold rule works from the start"
        )
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    baselines = kept = calibrations = 0
    for brand, state in states.items():
        if brand in settings.brand_ids:
            handed = hand_over(client, keys, detector, brand, state)
            baselines += handed.baselines
            kept += handed.kept
            calibrations += handed.calibrations
    return (
        f"warm start: {baselines} baselines and {calibrations} rule calibrations learned from "
        f"days of this stream ({kept} warm ones kept), so the surge and negative-spike rules "
        "judge from the first minute"
    )


def cmd_demo_baseline(args: argparse.Namespace, settings: Settings) -> int:
    """socialpulse demo-baseline: rebuild the demo's shipped warm start."""
    from socialpulse.devtools import demo_baseline

    data = demo_baseline.build(settings, args.days, args.rate, args.seed)
    demo_baseline.DEMO_BASELINE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {demo_baseline.DEMO_BASELINE}: {data['events']} mentions over {args.days:g} days "
        f"at {args.rate:g} events/s, {len(data['brands'])} brands"
    )
    return 0


def _demo_line(message: dict[str, Any], settings: Settings) -> str:
    """A Slack call the stub received, for the demo's terminal (with how to act on a new
    incident)."""
    method, channel, text = message["method"], message.get("channel"), message.get("text")
    if method == "chat.update":
        return f"Slack {channel}: (message updated) {text}"
    if message.get("thread_ts"):
        return f"Slack {channel}: (in the thread) {text}"
    if method != "chat.postMessage":
        return f"Slack {channel}: ({method} to {message.get('user')}) {text}"
    line = f"Slack {channel}: {text}"
    incident = next(
        (
            e.get("value")
            for b in message.get("blocks") or []
            if b.get("type") == "actions"
            for e in b.get("elements", [])
            if e.get("action_id") == "ack"
        ),
        None,
    )
    if incident:
        endpoint = settings.alerts.incidents.interactivity
        responder = (settings.alerts.incidents.responders or ["U0SOCIAL1"])[0]
        click = json.dumps(
            {
                "url": f"http://{endpoint.host}:{endpoint.port}{endpoint.path}",
                "user": responder,
                "action_id": "ack",
                "value": incident,
                "channel": channel,
            }
        )
        stub = settings.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
        line += (
            f"\n  Incident {incident} is open. Click Acknowledge as {responder} would (a signed "
            f"request through the stub):\n    curl -s -XPOST {stub}/stub/click -d '{click}'"
            f"\n  or from a shell: .venv/bin/socialpulse incidents ack {incident}"
        )
    return line


def _wait_for(url: str, worker: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StackError(
                f"worker exited with code {worker.returncode} at start; see {log_path}"
            )
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise StackError(
        f"worker /metrics did not answer at {url} within {timeout:.0f}s; see {log_path}"
    )


def _reported(
    command: Callable[[argparse.Namespace, Settings], int],
    settings_of: Callable[[argparse.Namespace], Settings],
) -> Callable[[argparse.Namespace], int]:
    """The command on the loaded settings, with a local service that cannot start said in one
    line (exit 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args, settings_of(args))
        except StackError as exc:
            print(f"socialpulse: {exc}", file=sys.stderr)
            return 1

    return run


def add_commands(sub: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Add stack, simulate, demo, bench and soak to the ``socialpulse`` subcommands."""
    stack = sub.add_parser("stack", help="local Kafka, Redis, Prometheus and Slack stub")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=_reported(cmd_stack, settings_of))

    def stream_options(p: argparse.ArgumentParser, duration: float) -> None:
        p.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
        p.add_argument(
            "--duration",
            type=float,
            default=duration,
            help="seconds to run; 0 runs until interrupted",
        )
        p.add_argument(
            "--burst-size", type=int, default=40, help="negative mentions in the burst (default 40)"
        )
        p.add_argument(
            "--burst-after", type=float, default=20.0, help="seconds before the burst (default 20)"
        )
        p.add_argument(
            "--envelope",
            type=int,
            default=50,
            help="events per Kafka message, batched per brand within 0.1s (default 50)",
        )

    warm = sub.add_parser(
        "demo-baseline", help="rebuild the demo's shipped warm baselines (a few minutes)"
    )
    warm.add_argument("--days", type=float, default=4.5, help="days of history (default 4.5)")
    warm.add_argument("--rate", type=float, default=20.0, help="the demo's events/s (default 20)")
    warm.add_argument("--seed", type=int, default=1)
    warm.set_defaults(func=lambda args: cmd_demo_baseline(args, settings_of(args)))

    simulate = sub.add_parser("simulate", help="produce a demo event stream")
    stream_options(simulate, 0)
    simulate.add_argument(
        "--burst", metavar="BRAND[:PLATFORM]", help="inject a negative-mention burst for this brand"
    )
    simulate.add_argument(
        "--scenario",
        metavar="NAME[:BRAND[:PLATFORM]]",
        help="crisis, launch, collapse or silent (default brand: the first of brands.yaml)",
    )
    simulate.add_argument(
        "--scenario-after", type=float, default=20.0, help="seconds before it starts (20)"
    )
    simulate.add_argument(
        "--scenario-for", type=float, default=0.0, help="seconds it lasts (0: to the end)"
    )
    simulate.add_argument(
        "--flat", action="store_true", help="a constant rate, no daily and weekly rhythm"
    )
    simulate.add_argument(
        "--poll-every",
        type=float,
        default=30.0,
        help="seconds between two metric snapshots of each live post and ad (default 30)",
    )
    simulate.add_argument("--seed", type=int, default=None)
    simulate.set_defaults(func=_reported(cmd_simulate, settings_of))

    demo = sub.add_parser("demo", help="stack + worker + demo stream with a crisis")
    stream_options(demo, 0)
    demo.set_defaults(func=_reported(cmd_demo, settings_of))

    bench = sub.add_parser("bench", help="benchmarks on the running stack")
    bench.add_argument("what", choices=["throughput", "scale", "latency"])
    bench.add_argument("--events", type=int, default=100_000)
    bench.add_argument(
        "--brands", type=int, nargs="+", default=[10, 100, 1000], help="scale: brand counts"
    )
    bench.add_argument("--rate", type=float, default=2000.0, help="scale: events/s")
    bench.add_argument(
        "--modes",
        nargs="+",
        choices=["all-windows", "boards", "totals-only"],
        default=["all-windows", "boards", "totals-only"],
        help="scale: what /metrics exports besides the running totals: every window gauge, "
        "the window gauges the boards read, or none",
    )
    bench.add_argument(
        "--seconds", type=float, default=40.0, help="scale: stream this long before measuring"
    )
    bench.add_argument(
        "--workers",
        type=int,
        choices=range(1, 7),
        default=1,
        metavar="1-6",
        help="scale: workers in one consumer group (each shows its partitions' brands)",
    )
    bench.add_argument(
        "--export-brands",
        choices=["owned", "all"],
        default="owned",
        help="scale: each worker shows its partitions' brands or every brand (export_brands)",
    )
    bench.add_argument("--crises", type=int, default=12, help="latency: crises, one by one")
    bench.add_argument(
        "--background-rate", type=float, default=1000.0, help="latency: background events/s"
    )
    bench.add_argument(
        "--warmup", type=float, default=20.0, help="latency: background stream before crises"
    )
    bench.add_argument(
        "--firing",
        nargs="+",
        choices=["early", "grid"],
        default=["early", "grid"],
        help="latency: with early firing (alerts.evaluation.early) and/or on the grid alone",
    )
    bench.add_argument("--latency-rate", type=float, default=2000.0)
    bench.add_argument("--latency-seconds", type=float, default=20.0)
    bench.add_argument("--envelope", type=int, default=100, help="events per envelope message")
    bench.add_argument(
        "--no-peer",
        dest="peer",
        action="store_false",
        help="throughput: skip the Quix Streams peer (benchmarks/quix_peer.py)",
    )
    bench.set_defaults(func=_reported(cmd_bench, settings_of))

    soak = sub.add_parser("soak", help="long fixed-rate run: throughput, p99, lag, RSS")
    soak.add_argument("--rate", type=float, default=500.0, help="events/s (default 500)")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument("--envelope", type=int, default=50, help="events per message (default 50)")
    soak.set_defaults(func=_reported(cmd_soak, settings_of))
