"""``socialpulse incidents list|show|ack|snooze|resolve|verdict|verdicts``: the incident layer
for people outside Slack. Actions go through the same queue as Slack clicks, so they have the
same effect and the same timeline: the evaluating worker applies them within a second; with no
worker running, the command applies them itself (the Slack notices then wait in the outbox for a
worker)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
import uuid
from typing import Any

from alerts.detection.alert_text import describe
from alerts.detection.backtest import iso
from alerts.detection.store import DetectionStore
from alerts.incidents.lifecycle import VERDICT_REASONS, VERDICTS, Incident, verdict_text
from alerts.incidents.round import IncidentManager
from alerts.incidents.store import ActionRequest, IncidentStore, brand_of
from alerts.notify.slack_message import incident_message
from alerts.silences.store import SilenceStore
from socialpulse.app.settings import Settings
from socialpulse.core.config_types import format_duration, parse_duration
from socialpulse.core.connections import async_redis_client, redis_client
from socialpulse.core.redis_keys import RedisKeys

WAIT_SECONDS = 15.0


def add_commands(sub: Any, settings_of: Any) -> None:
    """Register ``socialpulse incidents ...``."""
    incidents = sub.add_parser("incidents", help="list, show and act on incidents")
    actions = incidents.add_subparsers(dest="incident_action", required=True)
    listing = actions.add_parser("list", help="open incidents (--all: recent ones too)")
    listing.add_argument("--brand", help="one brand (default: all)")
    listing.add_argument("--all", action="store_true", help="include resolved incidents")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    show = actions.add_parser("show", help="one incident and its timeline")
    show.add_argument("incident", help="its id, e.g. acme-12")
    show.add_argument("--format", choices=["text", "json"], default="text")
    verdict = actions.add_parser("verdict", help="say whether an incident was any use")
    verdict.add_argument("incident", help="its id, e.g. acme-12")
    verdict.add_argument("verdict", choices=list(VERDICTS))
    verdict.add_argument(
        "--reason", choices=list(VERDICT_REASONS), default="", help="why it was not useful"
    )
    verdict.add_argument("--as", dest="who", default=None, help="your name (default: login)")
    export = actions.add_parser(
        "verdicts",
        help="the verdicts given, as JSONL (socialpulse backtest --verdicts reads it)",
    )
    export.add_argument("--brand", help="one brand (default: all)")
    export.add_argument("--days", type=int, default=90, help="incidents opened this many days")
    for name, text in (("ack", "acknowledge"), ("resolve", "resolve"), ("snooze", "snooze")):
        act = actions.add_parser(name, help=f"{text} an incident")
        act.add_argument("incident", help="its id, e.g. acme-12")
        if name == "snooze":
            act.add_argument("duration", help="how long, e.g. 30m or 2h")
        act.add_argument("--why", default="", help="a note for the timeline")
        act.add_argument("--as", dest="who", default=None, help="your name (default: login)")
    incidents.set_defaults(func=lambda args: cmd_incidents(args, settings_of(args)))


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    """Run one incidents subcommand."""
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    client = async_redis_client(settings.pipeline.redis, decode_responses=True)
    store = IncidentStore(client, RedisKeys(settings.pipeline.redis.key_prefix))
    try:
        if args.incident_action in ("list", "verdicts"):
            if args.brand and args.brand not in settings.brand_ids:
                print(f"socialpulse incidents: no brand {args.brand!r}", file=sys.stderr)
                return 2
            await _catch_up(settings, store, [args.brand] if args.brand else settings.brand_ids)
            if args.incident_action == "verdicts":
                return await _export_verdicts(args, settings, store)
            return await _list(args, settings, store)
        brand = brand_of(args.incident)
        if brand not in settings.brand_ids:
            print(f"socialpulse incidents: no brand {brand!r} for {args.incident}", file=sys.stderr)
            return 2
        await _catch_up(settings, store, [brand])
        incident = await store.get(brand, args.incident)
        if incident is None:
            print(f"socialpulse incidents: no incident {args.incident}", file=sys.stderr)
            return 2
        if args.incident_action == "show":
            return await _show(args, store, incident)
        return await _act(args, settings, store, brand)
    finally:
        await client.aclose()


async def _catch_up(settings: Settings, store: IncidentStore, brands: list[str]) -> None:
    """With no worker evaluating (the lock is free), do the incident round here: new firings,
    queued actions, escalations. With a worker, it does them within a second."""
    lock = store.keys.evaluation_lock()
    owner = f"cli-{uuid.uuid4().hex}"
    if not await DetectionStore(store.client, store.keys).hold_lock(owner, 30_000):
        return
    try:
        manager = IncidentManager(settings, store, incident_message)
        sync = redis_client(settings.pipeline.redis, decode_responses=True)
        try:
            silences = SilenceStore(sync, store.keys).current(settings.alerts.silences, time.time())
        finally:
            sync.close()
        for brand in brands:
            await manager.round(brand, time.time(), silences=silences)
    finally:
        if await store.client.get(lock) == owner:
            await store.client.delete(lock)


async def _list(args: argparse.Namespace, settings: Settings, store: IncidentStore) -> int:
    brands = [args.brand] if args.brand else settings.brand_ids
    found: list[Incident] = []
    for brand in brands:
        found += [i for i in await store.recent(brand) if args.all or i.open]
    found.sort(key=lambda i: i.opened_at, reverse=True)
    if args.format == "json":
        for incident in found:
            print(json.dumps(incident.to_dict()))
        return 0
    if not found:
        print("no open incidents" if not args.all else "no incidents")
        return 0
    print(
        f"{'incident':<14} {'state':<13} {'severity':<9} {'opened (UTC)':<17} {'firings':>7}  what"
    )
    for i in found:
        opened = time.strftime("%Y-%m-%d %H:%M", time.gmtime(i.opened_at))
        print(
            f"{i.id:<14} {i.state:<13} {i.severity:<9} {opened:<17} {i.firings:>7}  "
            f"{i.platform}: {describe(i)}"
        )
    return 0


async def _show(args: argparse.Namespace, store: IncidentStore, incident: Incident) -> int:
    timeline = await store.timeline(incident.brand, incident.id)
    if args.format == "json":
        data = {**incident.to_dict(), "timeline": [e.to_dict() for e in timeline]}
        print(json.dumps(data))
        return 0
    where = f"{incident.brand}/{incident.platform}"
    print(f"{incident.id}: {incident.state}, {incident.severity}, {where}")
    print(f"  rule {incident.rule} ({incident.kind}): {describe(incident)}")
    print(f"  firings {incident.firings}, channel {incident.channel}")
    for entry in timeline:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.at))
        print(f"  {at}  {entry.who}: {entry.action}" + (f" ({entry.why})" if entry.why else ""))
    return 0


async def _export_verdicts(
    args: argparse.Namespace, settings: Settings, store: IncidentStore
) -> int:
    since = time.time() - args.days * 86400
    for brand in [args.brand] if args.brand else settings.brand_ids:
        k = store.of(brand)
        ids: Any = await store.client.zrangebyscore(k.verdicts, since, "+inf")
        raw: Any = await store.client.mget([k.incident(i) for i in ids]) if ids else []
        for incident in (Incident.from_dict(json.loads(r)) for r in raw if r):
            if incident.verdict is not None:
                print(json.dumps(verdict_record(incident)))
    return 0


def verdict_record(incident: Incident) -> dict[str, Any]:
    """An incident's verdict as one line of the export (alerts.incidents.verdict_labels reads
    it)."""

    def at(ts: float | None) -> str | None:
        return iso(ts) if ts is not None else None

    return {
        "incident": incident.id,
        "brand": incident.brand,
        "platform": incident.platform,
        "rule": incident.rule,
        "rules": incident.rules,
        "severity": incident.severity,
        "opened_at": iso(incident.opened_at),
        "since": iso(incident.since),
        "resolved_at": at(incident.resolved_at),
        "verdict": incident.verdict,
        "reason": incident.verdict_reason,
        "by": incident.verdict_by,
        "at": at(incident.verdict_at),
    }


async def _act(
    args: argparse.Namespace, settings: Settings, store: IncidentStore, brand: str
) -> int:
    who = f"{args.who or getpass.getuser()} (CLI)"
    snooze_for = parse_duration(args.duration) if args.incident_action == "snooze" else None
    request = ActionRequest(
        args.incident, args.incident_action, who, getattr(args, "why", ""), snooze_for
    )
    if args.incident_action == "verdict":
        request.verdict, request.reason = args.verdict, args.reason
    request_id = await store.request(brand, request)
    await _catch_up(settings, store, [brand])
    deadline = time.monotonic() + WAIT_SECONDS
    while (result := await store.result(brand, request_id)) is None:
        if time.monotonic() > deadline:
            print(f"queued; no worker applied it within {WAIT_SECONDS:.0f}s", file=sys.stderr)
            return 1
        await asyncio.sleep(0.2)
    if result != "ok":
        print(f"socialpulse incidents: refused: {result}", file=sys.stderr)
        return 1
    if request.action == "verdict":
        print(f"{args.incident} marked {verdict_text(request.verdict, request.reason)} by {who}")
        return 0
    done = {"ack": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}[request.action]
    extra = f" for {format_duration(snooze_for)}" if snooze_for else ""
    print(f"{args.incident} {done}{extra} by {who}")
    return 0
