"""The ``socialpulse`` command: stack, worker, simulate, demo, ingest, config check."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialpulse import boards_cli, detection_cli, dlq_cli, incidents_cli, ingest_cli
from socialpulse.config_types import format_duration, parse_duration
from socialpulse.connections import RedisClusterUnreachable
from socialpulse.paths import state_dir
from socialpulse.settings import (
    ConfigError,
    Settings,
    load_settings,
)
from socialpulse.stack.process import StackError
from streams.counters import DIMENSIONS

if TYPE_CHECKING:
    from socialpulse.scenarios import Scenario


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def cmd_stack(args: argparse.Namespace) -> int:
    """socialpulse stack up|down|status."""
    from socialpulse.stack import services

    settings = _settings(args)
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


def cmd_worker(args: argparse.Namespace) -> int:
    """socialpulse worker: run the Faust worker (counts, /metrics, alerts)."""
    from socialpulse.allocator import reexec_on_jemalloc

    reexec_on_jemalloc()  # returns when already on it, opted out, or not installed
    from streams.app import run_worker

    settings = _settings(args)
    run_worker(settings, loglevel=args.loglevel, register=args.register)
    return 0


def _scenario(args: argparse.Namespace, settings: Settings) -> Scenario | None:
    """The --scenario NAME[:BRAND[:PLATFORM]] of simulate (default: the first brand and its
    first platform)."""
    from socialpulse.scenarios import SCENARIOS, Scenario

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


def cmd_simulate(args: argparse.Namespace) -> int:
    """socialpulse simulate: produce demo events (optionally a scenario or a negative burst)."""
    from socialpulse import simulate
    from streams.topics import ensure_topics

    settings = _settings(args)
    scenario = _scenario(args, settings)
    ensure_topics(settings)
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
    )
    print(f"simulate: sent {sent} events")
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    """socialpulse kpis --brand B --window W: current counters and KPIs, as /metrics shows them."""

    from socialpulse.connections import redis_client
    from socialpulse.kpi_report import kpi_json, kpi_table, top_columns
    from streams.kpis import brand_snapshots, with_competitor_mentions
    from streams.redis_counts import RedisKeys, read_dimension_windows, read_windows

    settings = _settings(args)
    brands = {b.id: b for b in settings.brands.brands}
    if args.brand not in brands:
        print(
            f"socialpulse: --brand {args.brand!r} is not in brands.yaml "
            f"(brands: {', '.join(brands)})",
            file=sys.stderr,
        )
        return 2
    try:
        window = parse_duration(args.window)
    except ValueError as exc:
        print(f"socialpulse: --window: {exc}", file=sys.stderr)
        return 2
    plan = settings.window_plan
    if window not in plan.windows:
        shown = ", ".join(format_duration(w) for w in plan.windows)
        print(
            f"socialpulse: --window {args.window} is not a configured window ({shown}); "
            "add it to windows.rolling in socialpulse.yaml",
            file=sys.stderr,
        )
        return 2
    client = redis_client(settings, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    if args.by != "platform":
        by_window = read_dimension_windows(client, keys, plan, args.brand, args.by)
        by_window = {w: top_columns(c, args.top) for w, c in by_window.items()}
        columns: list[str] = []
    else:
        rivals = settings.competitors.get(args.brand, [])
        counts = read_windows(client, keys, plan, [args.brand, *rivals])
        counts = with_competitor_mentions(counts, settings.competitors)
        by_window = {w: counts[(args.brand, w)] for w in plan.windows}
        columns = brands[args.brand].platforms
    snap = brand_snapshots(args.brand, by_window, columns, settings.derived_kpis)[window]
    if args.format == "json":
        print(kpi_json(snap, args.by))
    else:
        print(kpi_table(snap, settings.kpis.kpis, args.by))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """socialpulse bench throughput: worker events/s vs a bare consumer, and latency."""
    from socialpulse import bench

    bench.run(_settings(args), args.events, args.latency_rate, args.latency_seconds, args.envelope)
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    """socialpulse soak: a fixed-rate demo stream for minutes; throughput, p99, lag, RSS."""
    from socialpulse import soak

    figures = soak.run(_settings(args), args.rate, args.minutes, args.envelope)
    return 0 if figures["rss_flat"] and figures["lag_bounded"] else 1


def cmd_config(args: argparse.Namespace) -> int:
    """socialpulse config check: validate the config files and summarise them."""
    settings = _settings(args)
    p = settings.pipeline
    print(f"config OK: {settings.config_dir}")
    print(
        f"  kafka {p.kafka.bootstrap_servers}, topics {p.topics.mentions}, "
        f"{p.topics.interactions} ({p.kafka.partitions} partitions)"
    )
    print(f"  brands: {', '.join(settings.brand_ids)}")
    alerts = settings.alerts
    print(f"  rules ({len(alerts.rules)}) -> {alerts.slack.channel}:")
    for rule in alerts.rules:
        print(
            f"    {rule.name}: {rule.kind} on {rule.kpi} over {format_duration(rule.window)},"
            f" {rule.direction}, {rule.severity}"
        )
    print(f"  targets: {', '.join(t.name for t in alerts.targets) or 'none'}")
    from ingest.config import load_ingest

    ingest = load_ingest(settings)
    gateway = ingest.gateway
    print(
        f"  ingest gateway {gateway.host}:{gateway.port}, sources {', '.join(gateway.sources)}; "
        f"webhooks: {', '.join(['meta', *ingest.webhooks])}; "
        f"mappings: {', '.join(ingest.mappings) or 'none'}"
    )
    return 0


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as response:
        return dict(json.load(response))


def cmd_demo(args: argparse.Namespace) -> int:
    """socialpulse demo: stack, worker, demo stream with a crisis; says where to look."""
    from socialpulse import simulate
    from socialpulse.scenarios import Scenario
    from socialpulse.stack import services
    from streams.topics import ensure_topics

    settings = _settings(args)
    for line in services.up(settings):
        print(line, flush=True)
    ensure_topics(settings)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="socialpulse", description=__doc__)
    parser.add_argument(
        "--config", help="config folder (default: config/ or $SOCIALPULSE_CONFIG_DIR)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="local Kafka, Redis, Prometheus and Slack stub")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=cmd_stack)

    worker = sub.add_parser("worker", help="run the stream worker")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument(
        "--register",
        action="store_true",
        help="have the local stack's Prometheus scrape this worker too (an extra worker)",
    )
    worker.set_defaults(func=cmd_worker)

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
    simulate.add_argument("--seed", type=int, default=None)
    simulate.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="stack + worker + demo stream with a crisis")
    stream_options(demo, 0)
    demo.set_defaults(func=cmd_demo)

    kpis = sub.add_parser("kpis", help="current counters and KPIs of a brand, from Redis")
    kpis.add_argument("--brand", required=True)
    kpis.add_argument("--window", default="5m", help="one of windows.rolling (default 5m)")
    kpis.add_argument("--format", choices=["table", "json"], default="table")
    kpis.add_argument(
        "--by",
        choices=["platform", *DIMENSIONS],
        default="platform",
        help="columns: platforms (default), campaigns or content items (all platforms each)",
    )
    kpis.add_argument(
        "--top",
        type=int,
        default=10,
        help="with --by campaign or content: the N busiest (default 10)",
    )
    kpis.set_defaults(func=cmd_kpis)

    bench = sub.add_parser("bench", help="benchmarks on the running stack")
    bench.add_argument("what", choices=["throughput"])
    bench.add_argument("--events", type=int, default=100_000)
    bench.add_argument("--latency-rate", type=float, default=2000.0)
    bench.add_argument("--latency-seconds", type=float, default=20.0)
    bench.add_argument("--envelope", type=int, default=100, help="events per envelope message")
    bench.set_defaults(func=cmd_bench)

    soak = sub.add_parser("soak", help="long fixed-rate run: throughput, p99, lag, RSS")
    soak.add_argument("--rate", type=float, default=500.0, help="events/s (default 500)")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument("--envelope", type=int, default=50, help="events per message (default 50)")
    soak.set_defaults(func=cmd_soak)

    detection_cli.add_commands(sub, _settings)
    boards_cli.add_commands(sub, _settings)
    dlq_cli.add_commands(sub, _settings)
    incidents_cli.add_commands(sub, _settings)
    ingest_cli.add_commands(sub, _settings)

    config = sub.add_parser("config", help="validate the configuration")
    config.add_argument("action", choices=["check"])
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``socialpulse`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # kafka-python logs every connection at INFO; only its warnings help an operator.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"socialpulse: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except (StackError, RedisClusterUnreachable) as exc:
        print(f"socialpulse: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
