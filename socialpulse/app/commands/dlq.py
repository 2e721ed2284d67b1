"""``socialpulse dlq``: list, show and replay the dead letters (socialpulse.app.dead_letters)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from socialpulse.app.settings import Settings
from socialpulse.core.config_types import parse_duration


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """List, show or replay dead letters."""
    from socialpulse.app import dead_letters as dl

    since = time.time() - parse_duration(args.since) if getattr(args, "since", None) else None
    # A worker killed mid-batch writes some dead letters again: each is shown and replayed once.
    letters = dl.once(dl.read_dead_letters(settings))
    if args.dlq_action == "show":
        found = dl.select(letters, at=[args.at])
        if not found:
            print(
                f"socialpulse dlq: no dead letter at {args.at} "
                "(list them with `socialpulse dlq list`)",
                file=sys.stderr,
            )
            return 2
        print(json.dumps(found[0].to_dict(), indent=2, sort_keys=True))
        return 0
    chosen = dl.select(
        letters, reasons=args.reason or (), at=getattr(args, "at", None) or (), since=since
    )
    if args.dlq_action == "list":
        chosen = chosen[-args.limit :] if args.limit else chosen
        print(dl.as_json(chosen) if args.format == "json" else dl.table(chosen))
        if args.format != "json":
            print(f"{len(chosen)} of {len(letters)} dead letters")
        return 0
    if not (args.reason or args.at or args.all):
        print(
            "socialpulse dlq replay: name what to replay: --reason, --at or --all", file=sys.stderr
        )
        return 2
    if args.dry_run:
        print(dl.table(chosen))
        print(f"would replay {len(chosen)} dead letters")
        return 0
    sent = dl.replay(settings, chosen)
    print(f"replayed {sent} dead letters to their source topics")
    return 0


def add_commands(sub: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Register ``dlq list``, ``dlq show`` and ``dlq replay``."""
    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay after a fix")
    actions = dlq.add_subparsers(dest="dlq_action", required=True)
    listing = actions.add_parser("list", help="the dead letters, oldest first")
    show = actions.add_parser("show", help="one dead letter with its original bytes")
    show.add_argument("at", help="its position, PARTITION:OFFSET (from `dlq list`)")
    again = actions.add_parser("replay", help="send dead letters to their source topic again")
    for p in (listing, again):
        p.add_argument("--reason", action="append", help="only this reason (repeatable)")
        p.add_argument("--since", help="only those dead-lettered in the last DURATION, e.g. 1h")
    listing.add_argument("--limit", type=int, default=0, help="only the newest N")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    again.add_argument("--at", action="append", help="only PARTITION:OFFSET (repeatable)")
    again.add_argument("--all", action="store_true", help="every dead letter")
    again.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    for p in (listing, show, again):
        p.set_defaults(func=lambda a: cmd_dlq(a, settings_of(a)))


__all__ = ["add_commands"]
