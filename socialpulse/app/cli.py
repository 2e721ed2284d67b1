"""The runtime commands of ``socialpulse``: worker, kpis, config check, and those of
socialpulse.app.commands (ingest, gateway, incidents, dlq, boards, detection). The dev tools add
theirs (stack, simulate, demo, bench, soak) in socialpulse.cli, the entry point."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from socialpulse.app.commands import boards as boards_cli
from socialpulse.app.commands import detection as detection_cli
from socialpulse.app.commands import dlq as dlq_cli
from socialpulse.app.commands import incidents as incidents_cli
from socialpulse.app.commands import ingest as ingest_cli
from socialpulse.app.commands import report as report_cli
from socialpulse.app.commands import silences as silences_cli
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.config import ConfigError
from socialpulse.core.config_types import format_duration, parse_duration
from socialpulse.core.connections import RedisClusterUnreachable
from streams.counters import DIMENSIONS


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def cmd_worker(args: argparse.Namespace) -> int:
    """socialpulse worker: run the Faust worker (counts, /metrics, alerts)."""
    from socialpulse.app.allocator import reexec_on_jemalloc

    reexec_on_jemalloc()  # returns when already on it, opted out, or not installed
    from socialpulse.app.worker import run_worker

    settings = _settings(args)
    run_worker(settings, loglevel=args.loglevel, register=args.register)
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    """socialpulse kpis --brand B --window W: current counters and KPIs, as /metrics shows them."""

    from socialpulse.app.kpi_report import kpi_json, kpi_table, top_columns
    from socialpulse.core.connections import redis_client
    from socialpulse.core.redis_keys import RedisKeys
    from streams.kpis import brand_snapshots, with_competitor_mentions
    from streams.store.redis_store import read_dimension_windows, read_windows

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
    client = redis_client(settings.pipeline.redis, decode_responses=True)
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

    ingest = load_ingest(settings.config_dir, settings.brands)
    gateway = ingest.gateway
    print(
        f"  ingest gateway {gateway.host}:{gateway.port}, sources {', '.join(gateway.sources)}; "
        f"webhooks: {', '.join(['meta', *ingest.webhooks])}; "
        f"mappings: {', '.join(ingest.mappings) or 'none'}"
    )
    return 0


AddCommands = Callable[[Any, Callable[[argparse.Namespace], Settings]], None]


def build_parser(extra: Sequence[AddCommands] = ()) -> argparse.ArgumentParser:
    """The argument parser for every runtime subcommand, and those ``extra`` adds."""
    parser = argparse.ArgumentParser(prog="socialpulse", description=__doc__)
    parser.add_argument(
        "--config", help="config folder (default: config/ or $SOCIALPULSE_CONFIG_DIR)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run the stream worker")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument(
        "--register",
        action="store_true",
        help="have the local stack's Prometheus scrape this worker too (an extra worker)",
    )
    worker.set_defaults(func=cmd_worker)

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

    detection_cli.add_commands(sub, _settings)
    boards_cli.add_commands(sub, _settings)
    dlq_cli.add_commands(sub, _settings)
    incidents_cli.add_commands(sub, _settings)
    ingest_cli.add_commands(sub, _settings)
    report_cli.add_commands(sub, _settings)
    silences_cli.add_commands(sub, _settings)
    for add in extra:
        add(sub, _settings)

    config = sub.add_parser("config", help="validate the configuration")
    config.add_argument("action", choices=["check"])
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None, extra: Sequence[AddCommands] = ()) -> int:
    """Run one command; ``extra`` adds commands (the entry point adds the dev tools')."""
    args = build_parser(extra).parse_args(argv)
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
    except RedisClusterUnreachable as exc:
        print(f"socialpulse: {exc}", file=sys.stderr)
        return 1
