"""``socialpulse backtest`` and ``socialpulse baseline backfill|show``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from alerts.detection.backtest import (
    BacktestError,
    backtest_events,
    backtest_series,
    count_event_file,
    event_span,
    infer_interval,
    iso,
    pair_firings,
    parse_time,
    read_series,
    select_rules,
    summary,
    table,
)
from alerts.detection.baseline import Baseline
from alerts.detection.configured import detector_for
from alerts.detection.engine import Detector, baseline_key
from alerts.detection.store import backfill_field, parse_state
from alerts.incidents.replay import budget_summary, notification_dict, replay
from alerts.incidents.verdict_labels import (
    DEFAULT_TOLERANCE,
    VerdictLabel,
    label_notifications,
    label_summary,
    latest_verdict,
    read_verdicts,
)
from socialpulse.app.settings import Settings, load_rules_file
from socialpulse.core.config import ConfigError
from socialpulse.core.config_types import format_duration, parse_duration
from socialpulse.core.connections import redis_client
from socialpulse.core.redis_keys import RedisKeys
from streams.counters import ALL_COUNTERS
from streams.metrics import metric_name

EVENT_SUFFIXES = (".jsonl", ".ndjson", ".json")


def add_commands(sub: Any, settings_of: Any) -> None:
    """Register the backtest and baseline subcommands (``settings_of(args)`` loads config)."""
    backtest = sub.add_parser(
        "backtest",
        help="replay a KPI series (CSV timestamp,value) or raw events (JSONL) through the rules",
    )
    backtest.add_argument("file", help="a .csv series or a .jsonl file of events ('-': stdin CSV)")
    backtest.add_argument("--kpi", help="the series' KPI (CSV: required; JSONL: only its rules)")
    backtest.add_argument("--rules", help="YAML with rules: (default: config/alerts.yaml)")
    backtest.add_argument("--interval", help="the series' interval, if not inferable (e.g. 5m)")
    backtest.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="json: one line per notification (an incident opened; the firings of one surge "
        "on a brand and platform join it), or per firing with --firings",
    )
    backtest.add_argument(
        "--firings", action="store_true", help="json: one line per firing, not per notification"
    )
    backtest.add_argument("--start", help="JSONL: first tick (ISO 8601; default: first event)")
    backtest.add_argument("--end", help="JSONL: last tick (default: last event + longest window)")
    backtest.add_argument(
        "--verdicts",
        metavar="FILE",
        help="the team's verdicts on past incidents (JSONL of `socialpulse incidents verdicts`) "
        "as labels: how many useful incidents still notify and how much noise is avoided",
    )
    backtest.add_argument(
        "--verdict-tolerance",
        metavar="DURATION",
        help="--verdicts: how far apart in time a notification and an incident may be and "
        f"still match (default {format_duration(DEFAULT_TOLERANCE)})",
    )
    backtest.set_defaults(func=lambda args: cmd_backtest(args, settings_of(args)))

    baseline = sub.add_parser("baseline", help="learned baselines in Redis: backfill or show")
    baseline.add_argument("action", choices=["backfill", "show"])
    baseline.add_argument("--brand", help="the brand (--events: default every brand in it)")
    baseline.add_argument("--kpi", default="mentions")
    baseline.add_argument("--window", default="15m")
    baseline.add_argument("--platform", default="all")
    baseline.add_argument("--csv", help="backfill from a timestamp,value CSV of this KPI")
    baseline.add_argument(
        "--prometheus", metavar="DURATION", help="backfill from Prometheus' history, e.g. 7d"
    )
    baseline.add_argument(
        "--events",
        metavar="FILE",
        help="backfill every baseline and calibrated rule of the brands from an export of raw "
        "events (JSONL or CSV, of any age), read as `socialpulse ingest` reads it",
    )
    baseline.add_argument("--events-format", choices=["jsonl", "csv"], help="default: by name")
    baseline.add_argument("--mapping", help="--events: a mapping of config/ingest.yaml")
    baseline.add_argument(
        "--type", choices=["mention", "interaction"], help="--events: type of untyped records"
    )
    baseline.add_argument(
        "--replace",
        action="store_true",
        help="relearn a warm baseline from the history (default: only warming-up ones)",
    )
    baseline.set_defaults(func=lambda args: cmd_baseline(args, settings_of(args)))


def _detector(args: argparse.Namespace, settings: Settings) -> Detector:
    if not args.rules:
        return detector_for(settings.alerts, settings.kpis.kpis)
    return detector_for(load_rules_file(Path(args.rules), settings), settings.kpis.kpis)


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run the backtest and print firings and a summary."""
    path = Path(args.file)
    try:
        # Read before the replay, which may take minutes: a bad line fails at once.
        verdicts, tolerance = _verdicts(args)
        detector = _detector(args, settings)
        if args.kpi:
            detector = Detector(
                select_rules(detector.rules, args.kpi),
                detector.settings,
                detector.units,
                detector.budget,
                shared_with=detector.rules,
            )
        if path.suffix.lower() in EVENT_SUFFIXES:
            counts, first, last, rejected = count_event_file(settings, path)
            if rejected:
                print(f"{path}: {rejected} events rejected (not counted)", file=sys.stderr)
            start, end = event_span(
                detector,
                first,
                last,
                parse_time(args.start, "--start") if args.start else None,
                parse_time(args.end, "--end") if args.end else None,
            )
            events = backtest_events(settings, detector, counts, start, end)
        else:
            if not args.kpi:
                raise BacktestError("a CSV series needs --kpi (the KPI its values are)")
            handle: TextIO = (
                sys.stdin if args.file == "-" else path.open(encoding="utf-8", newline="")
            )
            with handle:
                rows = read_series(path, handle)
            times = [row[0] for row in rows]
            interval = (
                parse_duration(args.interval) if args.interval else infer_interval(path, times)
            )
            series = detector.settings.model_copy(
                update={"update_every": max(interval, detector.settings.update_every)}
            )
            detector = Detector(
                detector.rules, series, detector.units, detector.budget, detector.shared_with
            )
            events = backtest_series(detector, args.kpi, rows, interval)
            start, end = times[0], times[-1]
    except (BacktestError, ConfigError, OSError, ValueError) as exc:
        print(f"socialpulse backtest: {exc}", file=sys.stderr)
        return 2
    firings = pair_firings(events)
    # One surge, one page: the firings replayed through the incident lifecycle.
    incidents = replay(events, settings.alerts.incidents, settings.alerts.slack.channel, end)
    totals = summary(firings, end) + "\n" + budget_summary(incidents, detector.budget, start, end)
    labels = None
    if verdicts is not None:
        labels = label_notifications(incidents, verdicts, tolerance, start, end)
        totals += "\n" + label_summary(labels)
    if args.format == "json":
        if args.firings:
            lines = [f.to_dict() for f in firings]
        else:
            lines = [notification_dict(i) for i in incidents]
            if labels is not None:
                for line, found in zip(lines, labels.matched, strict=True):
                    # The verdict on the incident it is; the one recorded last if several.
                    latest = latest_verdict(found)
                    line["verdict"] = latest.verdict if latest is not None else None
        for line in lines:
            print(json.dumps(line))
        print(totals, file=sys.stderr)
    else:
        print(table(firings))
        print()
        print(totals)
    return 0


def _verdicts(args: argparse.Namespace) -> tuple[list[VerdictLabel] | None, int]:
    """``--verdicts``' labels (None: not given) and the matching tolerance in seconds."""
    if args.verdicts is None:
        if args.verdict_tolerance is not None:
            raise BacktestError("--verdict-tolerance needs --verdicts FILE")
        return None, DEFAULT_TOLERANCE
    try:
        tolerance = (
            parse_duration(args.verdict_tolerance)
            if args.verdict_tolerance is not None
            else DEFAULT_TOLERANCE
        )
    except ValueError as exc:
        raise BacktestError(f"--verdict-tolerance: {exc}") from None
    path = Path(args.verdicts)
    with path.open(encoding="utf-8") as handle:
        return read_verdicts(path, handle), tolerance


def cmd_baseline(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill a baseline from a CSV or Prometheus, or show it; or backfill every baseline
    and calibration from an export of events."""
    if args.action == "backfill" and args.events:
        return _backfill_events(args, settings)
    if args.brand is None:
        print("socialpulse baseline: --brand is needed (except with --events)", file=sys.stderr)
        return 2
    if args.brand not in settings.brand_ids:
        print(f"socialpulse baseline: unknown brand {args.brand!r}", file=sys.stderr)
        return 2
    window = parse_duration(args.window)
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    key = baseline_key(args.kpi, window, args.platform)
    fields: Any = client.hgetall(keys.detection(args.brand))
    # The stored baseline, or a backfill the worker has not taken over yet.
    stored = detector.baseline(parse_state(fields), args.kpi, window, args.platform)
    if args.action == "show":
        _show(stored, args)
        return 0
    try:
        rows = _history(args, settings, window)
    except (BacktestError, OSError, ValueError) as exc:
        print(f"socialpulse baseline: {exc}", file=sys.stderr)
        return 2
    # A baseline still warming up is relearned from the history (which is longer than what it
    # saw); a warm one is only extended by history newer than its last sample.
    replace = args.replace or not stored.ready
    baseline = detector.baseline(parse_state({}), args.kpi, window, args.platform)
    if not replace:
        baseline = stored
    learned = 0
    for ts, value in rows:
        if baseline.due(ts):
            baseline.update(ts, value)
            learned += 1
    # Handed over, not written as the baseline: the evaluating worker holds the evaluation lock
    # and would overwrite it with the state it loaded before.
    written_ms = int(time.time() * 1000)
    client.hset(
        keys.detection(args.brand),
        backfill_field(key, written_ms),
        json.dumps(baseline.to_dict()),
    )
    how = "relearned" if replace else "extended"
    print(
        f"backfilled {args.brand} {args.kpi} ({format_duration(window)}, {args.platform}): "
        f"{how}, {learned} samples learned, {baseline.updates} in all, "
        f"{'ready' if baseline.ready else 'still warming up'}"
    )
    if not learned and rows:
        print(
            "  the history is older than the baseline's last sample; --replace relearns it",
            file=sys.stderr,
        )
    return 0


def _backfill_events(args: argparse.Namespace, settings: Settings) -> int:
    """Learn every baseline and calibration from an export and hand them over to the worker."""
    from socialpulse.app.commands.ingest import mapping_named
    from socialpulse.app.history import hand_over, learn_from_export

    if args.brand is not None and args.brand not in settings.brand_ids:
        print(f"socialpulse baseline: unknown brand {args.brand!r}", file=sys.stderr)
        return 2
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    try:
        mapping = mapping_named(settings, args.mapping)
        learned = learn_from_export(
            Path(args.events), settings, detector, args.events_format, mapping, args.type
        )
    except (BacktestError, ConfigError, OSError, ValueError) as exc:
        print(f"socialpulse baseline: {exc}", file=sys.stderr)
        return 2
    client = redis_client(settings.pipeline.redis, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    brands = [args.brand] if args.brand else sorted(learned.states)
    for brand in brands:
        state = learned.states.get(brand)
        if state is None:
            continue
        handed = hand_over(client, keys, detector, brand, state, args.replace)
        print(
            f"backfilled {brand} from {args.events}: {handed.baselines} baselines learned "
            f"({handed.kept} warm ones kept), {handed.calibrations} rule calibrations, history "
            f"{iso(learned.first)} to {iso(learned.last)}"
        )
    rejected = sum(learned.rejected.values())
    print(
        f"{learned.counted} events counted, {rejected} rejected"
        + (
            f" ({', '.join(f'{r}: {n}' for r, n in sorted(learned.rejected.items()))})"
            if rejected
            else ""
        )
    )
    return 0


def _history(
    args: argparse.Namespace, settings: Settings, window: int
) -> list[tuple[float, float]]:
    if args.csv:
        path = Path(args.csv)
        with path.open(encoding="utf-8", newline="") as handle:
            rows = read_series(path, handle)
            return [(ts, value) for ts, value, _ in rows if value is not None]
    if args.prometheus:
        return _prometheus_history(settings, args, window, parse_duration(args.prometheus))
    raise BacktestError("backfill needs --csv FILE or --prometheus DURATION")


def _prometheus_history(
    settings: Settings, args: argparse.Namespace, window: int, span: int
) -> list[tuple[float, float]]:
    """The KPI's stored values from Prometheus, one per baseline update interval."""
    if args.kpi in ALL_COUNTERS:
        metric = metric_name(args.kpi)
    else:
        specs = [k for k in settings.kpis.kpis if k.name == args.kpi]
        if not specs:
            raise BacktestError(f"unknown KPI {args.kpi!r}")
        metric = specs[0].metric_name
    selector = (
        f'{metric}{{brand="{args.brand}",platform="{args.platform}",'
        f'window="{format_duration(window)}"}}'
    )
    end = time.time()
    step = settings.alerts.baselines.update_every
    query = urllib.parse.urlencode(
        {"query": f"max({selector})", "start": end - span, "end": end, "step": step}
    )
    url = f"{settings.pipeline.prometheus.url}/api/v1/query_range?{query}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise BacktestError(f"Prometheus refused {selector}: {body.get('error')}")
    result = body["data"]["result"]
    return [(float(t), float(v)) for t, v in (result[0]["values"] if result else [])]


def _show(baseline: Baseline, args: argparse.Namespace) -> None:
    print(
        f"{args.brand} {args.kpi} ({args.window}, {args.platform}): {baseline.updates} samples, "
        f"{'ready' if baseline.ready else 'warming up'}"
    )
    now = time.time()
    for hours in range(0, 24, 3):
        ts = now + hours * 3600
        expected = baseline.expected(ts)
        if expected is None:
            print("  no data learned yet")
            return
        low, high = expected.band(3)
        moment = time.strftime("%a %H:00 UTC", time.gmtime(ts))
        print(f"  {moment}: expected {expected.value:.1f} (3-spread band {low:.1f}-{high:.1f})")
