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
from collections.abc import Collection, Mapping, Sequence
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
from alerts.notify.silence_notices import tell_expiring
from alerts.notify.slack_message import incident_message
from alerts.notify.weekly_post import WeeklySummaries
from alerts.silences.model import Silence, expiring
from alerts.silences.store import SilenceStore
from socialpulse.core.config_types import format_duration
from socialpulse.core.redis_keys import RedisKeys
from streams.counters import ONE_PER_EVENT, WindowCounts
from streams.formulas import Value
from streams.kpis import DerivedKpi
from streams.store.redis_store import read_fine_buckets, read_windows
from streams.windows import TIERS, WindowPlan

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


def add_rows(first: Values, second: Values, names: Collection[str]) -> dict[str, dict[str, Value]]:
    """Per platform, the ``names`` of two rows of counters added (absent in both: absent)."""
    rows: dict[str, dict[str, Value]] = {}
    for platform in {*first, *second}:
        a, b = first.get(platform, {}), second.get(platform, {})
        rows[platform] = {
            name: (a.get(name) or 0) + (b.get(name) or 0)
            for name in names
            if name in a or name in b
        }
    return rows


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
        self.silences = SilenceStore(sync_client, store.keys)
        self.summaries = WeeklySummaries(settings, incidents, self.silences)
        self._pruned_at = 0.0
        # Set when a round produced firings or clearings: the outbox sends without waiting.
        self.delivery_due = asyncio.Event()
        self.rounds_with_events = 0  # its metrics are reported after each (evaluator)
        evaluation = settings.alerts.evaluation
        self._early_rules = self.detector.early_rules(evaluation.every) if evaluation.early else []
        self._early_counters = frozenset(
            name
            for rule in self._early_rules
            for name in (rule.kpi, rule.volume_kpi)
            if name in ONE_PER_EVENT
        )
        # The early rules' counters at the last tick over their windows without the next
        # tick's last `every` seconds, per brand (platforms, rows by window).
        self._rest: dict[str, tuple[list[str], dict[int, Values]]] = {}
        self._rest_tick: float | None = None
        # Per brand, the tick it was last looked at early for and the newest buckets' counts
        # it was looked at with: the same counts at the same tick decide the same (nothing).
        self._looked: dict[str, tuple[float, WindowCounts]] = {}

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
            self._rest_tick = None  # and its states, not ours, are the ones to look early from
            return []
        if self.shown_to is not None:
            self.shown_to.evaluating()
        events: list[AlertEvent] = []
        if last != self.last_tick:
            started = time.monotonic()
            events = await self._evaluate(last, now)
            detection_metrics.EVALUATION_SECONDS.observe(time.monotonic() - started)
            self.last_tick = last
            if self._early_rules:
                # At once, not a round later: what came since the tick (its settle seconds,
                # when no early look could take it) may already hold the next tick's level.
                events += await self._early(now)
        elif self._early_rules:
            events = await self._early(now)
        silences = await self._silences(now)
        for brand in await self.incidents.store.with_work(self.settings.brand_ids, now):
            await self.incidents.round(brand, now, self.last_values.get(brand), silences)
        told = await self._tell_expiring(silences, now)
        if told + await self.summaries.post_due(now):
            self.delivery_due.set()
        if events:
            self.rounds_with_events += 1
            self.delivery_due.set()
        return events

    async def _silences(self, now: float) -> list[Silence]:
        """The silences in force or coming (read each round: one made a second ago holds)."""
        settings = self.settings.alerts.silences
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            await asyncio.to_thread(self.silences.prune, now)
        return await asyncio.to_thread(self.silences.current, settings, now)

    async def _tell_expiring(self, silences: list[Silence], now: float) -> int:
        notify_before = self.settings.alerts.silences.notify_before
        return await tell_expiring(
            self.silences,
            self.incidents.store,
            expiring(silences, now, notify_before),
            self.settings.brand_ids,
            self.settings.alerts.incidents,
            self.settings.alerts.slack.channel,
            now,
        )

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
        pairs = [(b.id, b.platforms) for b in brands]
        for tick in ticks:
            # At the last tick also the early rules' windows without the next tick's last
            # seconds: the buckets they hold are read for the rules' windows anyway.
            rest = set()
            if tick == last:
                rest = {rule.window - evaluation.every for rule in self._early_rules}
            counts = await asyncio.to_thread(
                read_counts,
                self.sync_client,
                self.store.keys,
                self.settings,
                sorted({*windows, *rest}),
                tick,
            )
            if rest:
                self._rest_tick = tick
                self._rest = brand_values(
                    pairs,
                    {},
                    [],
                    {key: c for key, c in counts.items() if key[1] in rest},
                    self._early_counters,
                )
                counts = {key: c for key, c in counts.items() if key[1] in windows}
            values = brand_values(pairs, self.settings.competitors, kpis, counts, needed)
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
            if not event.confirms:  # counted when it was sent, early
                detection_metrics.ALERT_EVENTS.labels(event.rule, event.severity, event.event).inc()
            log.warning(
                "alert %s %s for %s/%s at tick %s: %s=%s baseline=%s score=%s",
                event.rule,
                "confirmed" if event.confirms else event.event,
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

    async def _early(self, now: float) -> list[AlertEvent]:
        """Fire the early rules whose windows ending at the next tick already hold their level
        with what has been counted of that tick's last seconds (Detector.early): the tick
        itself would fire them whatever else comes, a few seconds later."""
        every = self.settings.alerts.evaluation.every
        tick = self._rest_tick
        if tick is None or tick != self.last_tick:
            return []  # the last tick was evaluated by another worker, or not yet by this one
        upcoming = tick + every
        brands = [
            b
            for b in self.settings.brands.brands
            if b.id in self._rest and b.id in self._saved and self._saved[b.id][1].cursor == tick
        ]
        starts = [start for start in range(int(tick), int(upcoming), TIERS[0]) if start <= now]
        latest = await asyncio.to_thread(
            read_fine_buckets,
            self.sync_client,
            self.store.keys,
            [b.id for b in brands],
            starts,
            self._early_counters,
        )
        looked = self._looked
        brands = [b for b in brands if looked.get(b.id) != (upcoming, latest[b.id])]
        for brand in brands:
            looked[brand.id] = (upcoming, latest[brand.id])
        so_far = brand_values(
            [(b.id, b.platforms) for b in brands],
            {},
            [],
            {(b.id, every): latest[b.id] for b in brands},
            self._early_counters,
        )
        saves = []
        for brand in brands:
            state = self._saved[brand.id][1]
            platforms, rest = self._rest[brand.id]
            added = so_far[brand.id][1].get(every, {})
            values = {
                window + every: add_rows(rows, added, self._early_counters)
                for window, rows in rest.items()
            }
            fired = self.detector.early(
                brand.id, upcoming, platforms, values, state, self._early_rules
            )
            if fired:
                saves.append((brand.id, state, fired))
                # What drove the incident (its context) is what fired it, not the last tick.
                shown = dict(self.last_values.get(brand.id, {}))
                for window, rows in values.items():
                    before = shown.get(window, {})
                    shown[window] = {p: {**before.get(p, {}), **row} for p, row in rows.items()}
                self.last_values[brand.id] = shown
        if not saves:
            return []
        # Taken out until saved, as in a round: a save that fails (Redis gone) must not leave
        # a state marked as fired early whose firing was never stored, or its tick would take
        # the firing for sent. The next round parses what Redis holds.
        stored = {b: self._saved.pop(b)[0] for b, _, _ in saves}
        written = await self.store.save_all(saves, stored)
        for brand_id, state, _ in saves:
            self._saved[brand_id] = (written[brand_id], state)
        events = [event for _, _, fired in saves for event in fired]
        for event in events:
            detection_metrics.ALERT_EVENTS.labels(event.rule, event.severity, event.event).inc()
            detection_metrics.EARLY_FIRINGS.labels(event.rule).inc()
            log.warning(
                "alert %s fired early for %s/%s, for tick %s (its window not yet complete): "
                "%s=%s level=%s",
                event.rule,
                event.brand,
                event.platform,
                int(event.at),
                event.kpi,
                event.value,
                event.level,
            )
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
