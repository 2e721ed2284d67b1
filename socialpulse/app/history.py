"""Warm detection from an export of raw events (``socialpulse baseline backfill --events``):
the export goes through the ingest mappings and validation like ``socialpulse ingest``, is
counted as the worker counts, and replayed through the shipped detector, so every baseline and
every calibrated rule's surge history is learned as if the worker had watched that month.
Nothing reaches Kafka: the history is older than the allowed lateness anyway.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from tqdm import tqdm

from alerts.detection.backtest import BacktestError, read_events, replay_events
from alerts.detection.engine import BrandState, Detector
from alerts.detection.store import backfill_field, calibration_backfill_field, parse_state
from ingest.config import FieldMapping
from ingest.files import counting, file_format, records
from ingest.mapping import apply_mapping
from ingest.validation import Accepted, Rejected, validate_item
from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import RedisKeys
from streams.batch import EventType
from streams.store.memory_store import MemoryCounts


@dataclass
class LearnedHistory:
    """What an export taught: per brand its detection state at the export's end."""

    states: dict[str, BrandState]
    first: float
    last: float
    counted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # What was counted, for the running totals of the history (socialpulse.app.totals_backfill).
    counts: MemoryCounts | None = None
    # With ``before``: the events at or after it, for the live path (Kafka), not learned from.
    recent: list[Accepted] = field(default_factory=list)


def learn_from_export(
    path: Path,
    settings: Settings,
    detector: Detector,
    fmt: str | None = None,
    mapping: tuple[str, FieldMapping] | None = None,
    default_type: EventType | None = None,
    before: float | None = None,
    progress: bool = False,
) -> LearnedHistory:
    """Map, validate and count the export's events, then replay every brand's rules over them
    on the baselines' sampling grid (``baselines.update_every``). With ``before`` (unix
    seconds), events from then on are set aside as ``recent`` instead (the live path counts
    them); ``progress`` shows a bar over the file's bytes."""
    kind = file_format(str(path), fmt)
    now, max_future = time.time(), settings.pipeline.windows.max_future
    rejected: Counter[str] = Counter()
    lines: list[str] = []
    skip = mapping[1].skip_rows if mapping else 0
    recent: list[Accepted] = []
    with (
        path.open(encoding="utf-8-sig", newline="") as source,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc="history",
            disable=not progress or None,
        ) as bar,
    ):
        for _, record in records(counting(source, bar), kind, skip):
            item = record
            if mapping and not isinstance(record, Rejected):
                item = (
                    apply_mapping(mapping[0], mapping[1], record)
                    if isinstance(record, dict)
                    else Rejected("invalid_fields", "a record is a JSON object")
                )
            # Any age is history; events from the future are refused as ingest refuses them.
            result = (
                item
                if isinstance(item, Rejected)
                else validate_item(item, now, max_future, settings.strict_known, default_type)
            )
            if isinstance(result, Accepted) and before is not None and result.ts >= before:
                recent.append(result)
            elif isinstance(result, Accepted):
                lines.append(orjson.dumps(result.body).decode() + "\n")
            else:
                rejected[result.reason] += 1
    if not lines:
        if recent:
            return LearnedHistory({}, 0.0, 0.0, 0, rejected, None, recent)
        raise BacktestError(f"{path}: no valid event ({sum(rejected.values())} rejected)")
    counts = MemoryCounts(
        settings.window_plan.tiers, settings.pipeline.cleaning.max_mentions_per_author_per_minute
    )
    first, last, refused = read_events(settings, path, io.StringIO("".join(lines)), counts)
    if refused:
        rejected["not_countable"] += refused
    every = settings.alerts.baselines.update_every
    # Up to the last event, not past it: after the export's end there is no data, not zero.
    _, states = replay_events(settings, detector, counts, first, last, every=every)
    return LearnedHistory(states, first, last, len(lines) - refused, rejected, counts, recent)


@dataclass(frozen=True)
class HandedOver:
    """What a hand-over wrote for a brand."""

    baselines: int
    kept: int  # warm baselines left as they were
    calibrations: int


def hand_over(
    client: redis.Redis,
    keys: RedisKeys,
    detector: Detector,
    brand: str,
    state: BrandState,
    replace: bool = False,
) -> HandedOver:
    """Hand a brand's learned baselines and calibrations over to the evaluating worker
    (``backfill*`` fields of its detection hash, taken over at its next tick). Without
    ``replace``, warm baselines and calibrations that watched longer are kept."""
    stored = parse_state(client.hgetall(keys.detection(brand)))  # type: ignore[arg-type]
    written_ms = int(time.time() * 1000)
    fields: dict[Any, Any] = {}
    kept = 0
    for key, values in state.baseline_states().items():
        kpi, window, platform = key.split("|")
        if not replace and detector.baseline(stored, kpi, int(window), platform).ready:
            kept += 1
            continue
        fields[backfill_field(key, written_ms)] = json.dumps(values)
    baselines = len(fields)
    for key, rule_state in state.rules.items():
        ours = rule_state.calibration
        mine = stored.rules.get(key)
        theirs = mine.calibration if mine else None
        if ours is None or (
            not replace and theirs is not None and theirs.observed >= ours.observed
        ):
            continue
        fields[calibration_backfill_field(key, written_ms)] = json.dumps(ours.to_dict())
    if fields:
        client.hset(keys.detection(brand), mapping=fields)
    return HandedOver(baselines, kept, len(fields) - baselines)
