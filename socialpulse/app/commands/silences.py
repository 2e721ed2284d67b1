"""``socialpulse silences add|list|expire``: silences from the command line, the same ones the
``/socialpulse`` slash command makes (kept in Redis; the evaluating worker reads them every
second)."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from typing import Any

from alerts.notify.commands import known_names, silence_line
from alerts.silences.model import SilenceError, new_silence, to_dict
from alerts.silences.request import silence_span
from alerts.silences.store import SilenceStore
from socialpulse.app.settings import Settings
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys


def add_commands(sub: Any, settings_of: Any) -> None:
    """Register ``socialpulse silences ...``."""
    silences = sub.add_parser("silences", help="keep planned surges from notifying")
    actions = silences.add_subparsers(dest="silence_action", required=True)
    add = actions.add_parser(
        "add",
        help="make a silence: matchers, a start and an end or length, and why",
        description="Firings matching every given matcher are recorded but notify nobody "
        "while it lasts; one still firing when it ends opens its incident then.",
    )
    for name, text in (
        ("brand", "brands"),
        ("platform", "platforms"),
        ("rule", "rules"),
        ("severity", "severities"),
    ):
        add.add_argument(
            f"--{name}", action="append", default=[], dest=text, help=f"match these {text}"
        )
    add.add_argument("--start", help="now (default), +30m, or ISO 8601 (UTC without offset)")
    add.add_argument("--end", help="+2h or ISO 8601")
    add.add_argument("--for", dest="length", help="how long, e.g. 3h (instead of --end)")
    add.add_argument("--why", required=True, help="why, for the team (e.g. 'launch at 10:00')")
    add.add_argument("--as", dest="who", default=None, help="your name (default: login)")
    listing = actions.add_parser("list", help="silences in force or coming (--all: ended too)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    expire = actions.add_parser("expire", help="end a silence early")
    expire.add_argument("silence", help="its id, e.g. s-3 (or config:<name>:<start>)")
    expire.add_argument("--as", dest="who", default=None, help="your name (default: login)")
    silences.set_defaults(func=lambda args: cmd_silences(args, settings_of(args)))


def cmd_silences(args: argparse.Namespace, settings: Settings) -> int:
    """Run one silences subcommand; a silence that cannot be made as asked exits 2 with why."""
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    store = SilenceStore(client, RedisKeys(settings.pipeline.redis.key_prefix))
    now = time.time()
    config = settings.alerts.silences
    try:
        if args.silence_action == "list":
            found = [s for s in store.current(config, now) if args.all or not s.over(now)]
            if args.format == "json":
                for silence in found:
                    print(json.dumps(to_dict(silence, now)))
            elif not found:
                print("no silences in force or coming")
            for silence in found if args.format == "table" else []:
                print(plain(silence_line(silence, now)))
            return 0
        who = f"{args.who or getpass.getuser()} (CLI)"
        if args.silence_action == "expire":
            ended = store.expire(args.silence, who, now, config)
            print(f"silence {ended.id} expired by {who}")
            return 0
        start, end = silence_span(args.start, args.end, args.length, now)
        known = known_names(settings)
        matchers = {
            name: [v for value in getattr(args, name) for v in value.split(",")]
            for name in ("brands", "platforms", "rules", "severities")
        }
        made = store.add(
            new_silence(
                "",
                matchers,
                start,
                end,
                who,
                args.why,
                now,
                "cli",
                known,
                config.max_duration,
            )
        )
    except (SilenceError, OverflowError) as exc:
        print(f"socialpulse silences: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    shown = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(made.end))
    print(f"silence {made.id} ({made.matchers_text()}) until {shown}")
    return 0


def plain(line: str) -> str:
    """A Slack listing line for a terminal: dates in UTC, mentions as the user id, and the
    three escaped characters back."""

    def date(match: re.Match[str]) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(match[1])))

    line = re.sub(r"<!date\^[0-9]+\^[^|>]*\|([0-9]+)>", date, line)
    line = re.sub(r"<@([A-Z0-9]+)>", r"\1", line)  # a Slack user's mention: their id
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("`", "")
