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
from collections.abc import Mapping

import redis
from slack_sdk.web.async_client import AsyncWebClient

from alerts.config import AlertConfig
from alerts.detection import metrics as detection_metrics
from alerts.detection.configured import detector_for
from alerts.detection.engine import Values, brand_values, read_time
from alerts.detection.rule_check import AlertEvent
from alerts.detection.store import DetectionStore
from alerts.incidents.round import IncidentManager
from alerts.incidents.store import IncidentStore
from alerts.notify.outbox import OutboxSender
from alerts.notify.slack_message import incident_message
from socialpulse.core.config_types import format_duration
from socialpulse.core.redis_keys import RedisKeys
from streams.counters import WindowCounts
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
    counts: dict[tuple[str, int], WindowCounts] = {}
    for window in windows:
        plan = WindowPlan.of([window], pipeline.allowed_lateness, pipeline.max_future)
        counts |= read_windows(client, keys, plan, settings.brand_ids, now=read_time(tick, window))
    return counts


class LiveEvaluation:
    """The worker's evaluator: ticks, state in Redis, incidents, and their Slack outbox."""

    def __init__(
        self,
        settings: AlertConfig,
        store: DetectionStore,
        sync_client: redis.Redis,
        slack: AsyncWebClient,
    ):
        self.settings = settings
        self.store = store
        self.sync_client = sync_client
        self.detector = detector_for(settings.alerts, settings.kpis.kpis)
        self.owner = uuid.uuid4().hex
        self.last_tick: float | None = None
        self.holding = False  # this worker holds the evaluation lock (and sends the outbox)
        self.last_values: dict[str, Mapping[int, Values]] = {}  # per brand, the last tick's
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
        states = {b.id: await self.store.load(b.id) for b in brands}
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
        windows = self.detector.windows()
        new: dict[str, list[AlertEvent]] = {b.id: [] for b in brands}
        for tick in ticks:
            counts = await asyncio.to_thread(
                read_counts, self.sync_client, self.store.keys, self.settings, windows, tick
            )
            values = brand_values(
                [(b.id, b.platforms) for b in brands],
                self.settings.competitors,
                self.settings.derived_kpis,
                counts,
            )
            for brand in brands:
                if tick not in plans[brand.id]:
                    continue
                platforms, by_window = values[brand.id]
                self.last_values[brand.id] = by_window
                fired = self.detector.tick(brand.id, tick, platforms, by_window, states[brand.id])
                detection_metrics.BRAND_EVALUATIONS.labels(brand.id).inc()
                new[brand.id].extend(fired)
        for brand in brands:
            if plans[brand.id]:
                await self.store.save(brand.id, states[brand.id], new[brand.id])
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

    async def send(self) -> int:
        """Deliver the Slack outbox, if this worker holds the evaluation lock."""
        return await self.outbox.deliver() if self.holding else 0
