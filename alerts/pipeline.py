"""Live rule evaluation in the worker: every tick, every brand, then the incident round.

Each worker runs :meth:`LiveEvaluation.round` every second; a Redis lock lets one of them
evaluate at a time, so a tick is judged once however many workers run, and another takes over
(catching up on the ticks it missed, from the stored cursor) when that one dies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

import redis
from slack_sdk.web.async_client import AsyncWebClient

from alerts.config import AlertConfig
from alerts.detection import metrics as detection_metrics
from alerts.detection.configured import detector_for
from alerts.detection.engine import BrandState, Shown, Values, brand_values, read_time
from alerts.detection.rule_check import AlertEvent
from alerts.detection.rules import Rule
from alerts.detection.store import DetectionStore, parse_state, same_state
from alerts.incidents.round import IncidentManager
from alerts.incidents.store import IncidentStore
from alerts.notify.outbox import OutboxSender
from alerts.notify.slack_message import incident_message
from socialpulse.core.config_types import format_duration
from socialpulse.core.redis_keys import RedisKeys
from streams.counters import WindowCounts
from streams.kpis import DerivedKpi
from streams.store.redis_store import read_windows
from streams.windows import WindowPlan

log = logging.getLogger(__name__)


def due_ticks(cursor: float | None, last: float, every: int, max_catch_up: int) -> list[float]:
    """Ticks after ``cursor`` up to ``last`` (just ``last`` for a brand never evaluated), at
    most ``max_catch_up`` seconds of them."""
    if cursor is None:
        return [last]
    first = max(cursor + every, last - max_catch_up)
    first = math.ceil(first / every) * every
    return [float(t) for t in range(int(first), int(last) + 1, every)]


def read_counts(
    client: redis.Redis, keys: RedisKeys, settings: AlertConfig, windows: list[int], tick: float
) -> dict[tuple[str, int], WindowCounts]:
    """Every brand's counts over each window ending at the tick's last bucket boundary."""
    pipeline = settings.pipeline.windows
    plan = WindowPlan.of(windows, pipeline.allowed_lateness, pipeline.max_future)
    ends = {window: read_time(tick, window) for window in windows}
    needed = rule_inputs(settings.alerts.rules, settings.derived_kpis)
    return read_windows(client, keys, plan, settings.brand_ids, tick, ends, needed)


def rule_inputs(rules: Sequence[Rule], kpis: Sequence[DerivedKpi]) -> frozenset[str]:
    """The counters the rules' KPIs, volumes and shares are computed from."""
    formulas = {kpi.name: kpi.formula.names for kpi in kpis}
    names: set[str] = set()
    todo = [name for rule in rules for name in (rule.kpi, rule.volume_kpi, rule.share_kpi)]
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo.extend(formulas.get(name, ()))
    return frozenset(names)


class ShownTo(Protocol):
    """Where the evaluator hands what it judged by (alerts.detection.metrics.RuleStates)."""

    def evaluating(self) -> None:
        """This worker holds the evaluation lock (it will publish)."""

    def publish(self, shown: Mapping[str, Shown]) -> None:
        """What the last tick judged by, per brand evaluated."""


class LiveEvaluation:
    """The worker's evaluator: ticks, state in Redis, incidents, and their Slack outbox."""

    def __init__(
        self,
        settings: AlertConfig,
        store: DetectionStore,
        sync_client: redis.Redis,
        slack: AsyncWebClient,
        shown_to: ShownTo | None = None,
    ):
        self.settings = settings
        self.shown_to = shown_to  # given what each round's ticks judged by (for /metrics)
        self.store = store
        self.sync_client = sync_client
        self.detector = detector_for(settings.alerts, settings.kpis.kpis)
        self.owner = uuid.uuid4().hex
        self.last_tick: float | None = None
        self.holding = False  # this worker holds the evaluation lock (and sends the outbox)
        self.last_values: dict[str, Mapping[int, Values]] = {}  # per brand, the last tick's
        # Per brand, the fields this worker last wrote and the state they were written from.
        self._saved: dict[str, tuple[dict[str, str], BrandState]] = {}
        self._stored: dict[str, dict[str, str]] = {}  # the hashes as read this round
        incidents = IncidentStore(store.client, store.keys)
        self.incidents = IncidentManager(settings, incidents, incident_message)
        self.outbox = OutboxSender(incidents, slack, settings.brand_ids)

    async def round(self, now: float | None = None) -> list[AlertEvent]:
        """Evaluate the ticks due by ``now`` (if this worker holds the lock), then run the
        incident round: new firings, people's actions, escalations (every second)."""
        evaluation = self.settings.alerts.evaluation
        now = time.time() if now is None else now
        last = math.floor((now - evaluation.settle) / evaluation.every) * evaluation.every
        ttl_ms = int(max(30, 3 * evaluation.every) * 1000)
        self.holding = await self.store.hold_lock(self.owner, ttl_ms)
        if not self.holding:
            self.last_tick = last  # another worker evaluates; look again at the next tick
            return []
        if self.shown_to is not None:
            self.shown_to.evaluating()
        events: list[AlertEvent] = []
        if last != self.last_tick:
            started = time.monotonic()
            events = await self._evaluate(last, now)
            detection_metrics.EVALUATION_SECONDS.observe(time.monotonic() - started)
            self.last_tick = last
        for brand in self.settings.brand_ids:
            await self.incidents.round(brand, now, self.last_values.get(brand))
        return events

    async def _evaluate(self, last: float, now: float) -> list[AlertEvent]:
        evaluation = self.settings.alerts.evaluation
        brands = self.settings.brands.brands
        states = await self._load([b.id for b in brands])
        plans = {
            b.id: due_ticks(states[b.id].cursor, last, evaluation.every, evaluation.max_catch_up)
            for b in brands
        }
        for brand in brands:
            cursor = states[brand.id].cursor
            if cursor is not None and last - cursor > evaluation.max_catch_up + evaluation.every:
                log.warning(
                    "rules for %s skipped %s of ticks (down longer than max_catch_up %s)",
                    brand.id,
                    format_duration(int(last - cursor - evaluation.max_catch_up)),
                    format_duration(evaluation.max_catch_up),
                )
        ticks = sorted({t for ts in plans.values() for t in ts})
        # Only the KPIs the rules read: the others cost most of a tick's maths at many brands.
        needed = rule_inputs(self.settings.alerts.rules, self.settings.derived_kpis)
        kpis = [kpi for kpi in self.settings.derived_kpis if kpi.name in needed]
        windows = self.detector.windows()
        new: dict[str, list[AlertEvent]] = {b.id: [] for b in brands}
        for tick in ticks:
            counts = await asyncio.to_thread(
                read_counts, self.sync_client, self.store.keys, self.settings, windows, tick
            )
            values = brand_values(
                [(b.id, b.platforms) for b in brands],
                self.settings.competitors,
                kpis,
                counts,
                needed,
            )
            for brand in brands:
                if tick not in plans[brand.id]:
                    continue
                platforms, by_window = values[brand.id]
                self.last_values[brand.id] = by_window
                fired = self.detector.tick(brand.id, tick, platforms, by_window, states[brand.id])
                detection_metrics.BRAND_EVALUATIONS.labels(brand.id).inc()
                new[brand.id].extend(fired)
        if self.shown_to is not None:  # before the save: who sees it saved sees it shown
            self.shown_to.publish(
                {b.id: shown for b in brands if (shown := states[b.id].shown) is not None}
            )
        saved = [(b.id, states[b.id], new[b.id]) for b in brands if plans[b.id]]
        written = await self.store.save_all(saved, self._stored)
        for brand_id, state, _ in saved:
            state.backfills = []  # removed by the save
            self._saved[brand_id] = (written[brand_id], state)
        events = [e for brand_events in new.values() for e in brand_events]
        for event in events:
            detection_metrics.ALERT_EVENTS.labels(event.rule, event.severity, event.event).inc()
            log.warning(
                "alert %s %s for %s/%s at tick %s: %s=%s baseline=%s score=%s",
                event.rule,
                event.event,
                event.brand,
                event.platform,
                int(event.at),
                event.kpi,
                event.value,
                event.baseline,
                event.score,
            )
        detection_metrics.RULE_TICKS.inc(len(ticks))
        detection_metrics.EVALUATION_DELAY.set(max(now - last, 0.0))
        return events

    async def _load(self, brands: list[str]) -> dict[str, BrandState]:
        # The stored fields are read every round; a brand's state is parsed again only when
        # they are not what this worker last wrote (a backfill, another evaluator): parsing
        # every baseline and rule state was a third of a round at 1,000 brands.
        stored = self._stored = await self.store.load_fields(brands)
        states = {}
        for brand, fields in stored.items():
            # Taken out: this round changes the state, and only its save puts it back.
            saved = self._saved.pop(brand, None)
            if saved is not None and same_state(fields, saved[0]):
                states[brand] = saved[1]
            else:
                states[brand] = parse_state(fields)
        return states

    async def send(self) -> int:
        """Deliver the Slack outbox, if this worker holds the evaluation lock."""
        return await self.outbox.deliver() if self.holding else 0
