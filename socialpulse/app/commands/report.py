"""``socialpulse report``: a brand's counters and KPIs over a month, a quarter, a campaign or
any days, from the daily rollups, against the span before (socialpulse.app.period_report)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from socialpulse.app.settings import Settings

SettingsOf = Callable[[argparse.Namespace], Settings]


def _fail(message: str) -> int:
    print(f"socialpulse report: {message}", file=sys.stderr)
    return 2


def cmd_report(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """socialpulse report --brand B --period 2026-11 | --quarter 2026-Q4 | --campaign C |
    --from D --to D [--by content] [--format table|json|csv]: 0, or 2 with the reason."""
    from socialpulse.app import period_report as pr
    from socialpulse.core.connections import redis_client
    from socialpulse.core.redis_keys import RedisKeys
    from streams.store.day_rollups import DAY, day_start, read_days

    settings = settings_of(args)
    if args.brand not in settings.brand_ids:
        return _fail(
            f"--brand {args.brand!r} is not in brands.yaml ({', '.join(settings.brand_ids)})"
        )
    chosen = [n for n in ("period", "quarter", "start") if getattr(args, n)]
    if (args.start is None) != (args.end is None):
        return _fail("--from and --to go together (both days included)")
    if len(chosen) > 1 or (not chosen and not args.campaign):
        return _fail(
            "give one of --period 2026-11, --quarter 2026-Q4, --from D --to D, or --campaign C"
        )
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    keep = settings.pipeline.rollups.keep_days
    try:
        if args.period:
            span = pr.month(args.period)
        elif args.quarter:
            span = pr.quarter(args.quarter)
        elif args.start:
            span = pr.days_between(args.start, args.end)
        else:
            today = day_start(time.time())
            kept = [today - n * DAY for n in range(keep, -1, -1)]
            _, dims = read_days(client, keys, args.brand, kept)
            found = pr.campaign_span(dims, args.campaign)
            if found is None:
                return _fail(
                    f"campaign {args.campaign!r} of {args.brand} has no count in the last "
                    f"{keep} days (rollups.keep_days); check the campaign id its events carry"
                )
            span = found
    except ValueError as exc:
        return _fail(str(exc))
    before = span.before()
    counts, dims = read_days(client, keys, args.brand, [*before.days, *span.days])
    member = f"campaign:{args.campaign}" if args.campaign else None
    source = dims if member else counts
    seconds = (len(span.days) * DAY, len(before.days) * DAY)
    kpis = settings.derived_kpis
    what = f"campaign {args.campaign}" if member else "all platforms"
    if args.by == "content":
        items = pr.members(dims, span.days, "content")
        lines: list[Any] = []
        for item in items:
            rows = pr.rows(
                pr.summed(dims, span.days, item), pr.summed(dims, before.days, item), kpis, seconds
            )
            lines += [
                pr.Row(f"{item.removeprefix('content:')} {r.name}", r.unit, r.current, r.previous)
                for r in rows
            ]
        what = "content items"
    else:
        lines = pr.rows(
            pr.summed(source, span.days, member),
            pr.summed(source, before.days, member),
            kpis,
            seconds,
        )
    if args.format == "json":
        print(pr.as_json(args.brand, what, (span, before), lines))
    elif args.format == "csv":
        print(pr.as_csv(lines), end="")
    else:
        print(
            pr.table(
                f"{args.brand}, {what}, {span.label} against {before.label}", (span, before), lines
            )
        )
    return 0


def add_commands(sub: Any, settings_of: SettingsOf) -> None:
    """Add the report subcommand."""
    report = sub.add_parser(
        "report", help="counters and KPIs over a month, quarter, campaign or days (daily rollups)"
    )
    report.add_argument("--brand", required=True)
    report.add_argument("--period", help="a month: 2026-11")
    report.add_argument("--quarter", help="a quarter: 2026-Q4")
    report.add_argument("--campaign", help="a campaign: its days (or --from/--to), its counts")
    report.add_argument("--from", dest="start", help="first day: 2026-11-03")
    report.add_argument("--to", dest="end", help="last day, included: 2026-11-16")
    report.add_argument(
        "--by",
        choices=["all", "content"],
        default="all",
        help="content: each content item's counters and KPIs (content_roi) over the span",
    )
    report.add_argument("--format", choices=["table", "json", "csv"], default="table")
    report.set_defaults(func=lambda a: cmd_report(a, settings_of))
