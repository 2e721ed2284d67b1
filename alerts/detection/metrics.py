"""Prometheus metrics of the detection layer, read from Redis at scrape time.

- ``socialpulse_alert_rule_firing``: 1 while a rule fires for a brand and platform, else 0;
- ``socialpulse_kpi_baseline``: what a learned baseline expects now (warmed-up ones only),
  and ``socialpulse_kpi_baseline_band``: its normal range (``NORMAL_BAND_Z`` spreads);
- ``socialpulse_alert_rule_trigger_level``: the KPI value beyond which a rule's condition is
  over now (``bound`` upper or lower), so a board draws the alert line beside the KPI;
- ``socialpulse_alert_rule_level_z`` and ``socialpulse_alert_rule_budget_per_week``: a calibrated
  rule's level in spreads now and its notification budget (alerts.detection.budget);
- ``socialpulse_kpi_benchmark``: the configured benchmarks;
- ``socialpulse_target_*``: each SMART target's value, start value, progress, time used,
  projection to the deadline and whether it is on track.

Like the rolling counts these are brand-level values read from Redis, the same whichever worker
exports them (boards take ``max()``); the rule states of a brand are on the worker holding its
Kafka partition (socialpulse.core.brand_partitions), the benchmarks and targets on every one.
A target without a configured ``start_value`` starts from its KPI's value at the first scrape
on or after its start date; that value is kept in Redis (the first worker to record it wins),
so progress does not restart with the worker.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import redis
from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.detection.config import DetectionConfig
from alerts.detection.configured import detector_for
from alerts.detection.engine import Shown, brand_values, rule_platforms
from alerts.detection.rules import Target
from alerts.detection.store import parse_state
from alerts.detection.targets import day_start, target_status
from socialpulse.core.config_types import format_duration
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.exposition import Family, Rendered
from socialpulse.core.redis_keys import RedisKeys
from streams.metrics import KPI_READ_ERRORS
from streams.store.redis_store import read_windows
from streams.windows import WindowPlan

log = logging.getLogger(__name__)

# How wide the drawn "normal" band is, in spreads (rules fire further out, at their own z).
NORMAL_BAND_Z = 2.0
TARGET_LABELS = ["target", "brand", "kpi", "platform", "window"]


class _DetectionReader:
    """What both detection exports read with: the settings, the Redis client, the clock."""

    def __init__(
        self, settings: DetectionConfig, client: redis.Redis, clock: Callable[[], float] = time.time
    ):
        self.settings = settings
        self.client = client
        self.clock = clock
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)


class DetectionCollector(_DetectionReader, Collector):
    """Benchmarks and SMART targets for /metrics (read at each scrape: a target's progress is
    judged on the KPI value the same scrape shows)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The benchmarks, then the targets (one Redis round trip for their KPIs)."""
        now = self.clock()
        benchmark = GaugeMetricFamily(
            "socialpulse_kpi_benchmark",
            "Reference value of a KPI (alerts.yaml: benchmarks), to compare the KPI with.",
            labels=["kpi"],
        )
        for kpi, value in self.settings.alerts.benchmarks.items():
            benchmark.add_metric([kpi], value)
        yield benchmark
        try:
            targets = list(self._targets(now))
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read the targets' KPIs from Redis: %s", exc)
            return
        yield from targets

    def _targets(self, now: float) -> Iterator[GaugeMetricFamily]:
        targets = self.settings.alerts.targets
        families = {
            name: GaugeMetricFamily(f"socialpulse_target_{name}", text, labels=TARGET_LABELS)
            for name, text in (
                ("value", "The SMART target's value, to reach by its deadline."),
                ("start_value", "The KPI's value when the target started."),
                ("progress_ratio", "Share of the way from the start value to the target covered."),
                ("time_used_ratio", "Share of the time from start to deadline used."),
                ("projected_value", "The KPI at the deadline at the pace since the start."),
                (
                    "on_track",
                    "1 when reached, or when the pace since the start reaches it in time.",
                ),
                ("deadline_timestamp_seconds", "The target's deadline (unix time, UTC midnight)."),
            )
        }
        if not targets:
            return
        windows = sorted({t.window for t in targets})
        pipeline = self.settings.pipeline.windows
        plan = WindowPlan.of(windows, pipeline.allowed_lateness, pipeline.max_future)
        brands = sorted({t.brand for t in targets})
        # Share of voice needs the competitors' mentions too.
        rivals = {r for b in brands for r in self.settings.competitors.get(b, ())}
        counts = read_windows(self.client, self.keys, plan, sorted({*brands, *rivals}), now=now)
        configured = [(b.id, b.platforms) for b in self.settings.brands.brands if b.id in brands]
        values = brand_values(
            configured, self.settings.competitors, self.settings.derived_kpis, counts
        )
        for target in targets:
            labels = [
                target.name,
                target.brand,
                target.kpi,
                target.platform,
                format_duration(target.window),
            ]
            families["value"].add_metric(labels, target.value)
            families["deadline_timestamp_seconds"].add_metric(labels, day_start(target.deadline))
            _, by_window = values[target.brand]
            current = by_window.get(target.window, {}).get(target.platform, {}).get(target.kpi)
            if current is None or now < day_start(target.start):
                continue  # not started, or no value now (e.g. a ratio with nothing to divide)
            start_value, started_at = self._start(target, float(current), now)
            status = target_status(target, float(current), start_value, started_at, now)
            families["start_value"].add_metric(labels, status.start_value)
            families["progress_ratio"].add_metric(labels, status.progress)
            families["time_used_ratio"].add_metric(labels, status.time_used)
            if status.projected is not None:
                families["projected_value"].add_metric(labels, status.projected)
            if status.on_track is not None:
                families["on_track"].add_metric(labels, 1.0 if status.on_track else 0.0)
        yield from families.values()

    def _start(self, target: Target, current: float, now: float) -> tuple[float, float]:
        """The target's start value and when it held: configured, stored, or recorded now."""
        if target.start_value is not None:
            return target.start_value, day_start(target.start)
        key = self.keys.target_starts(target.brand)
        pipe = self.client.pipeline(transaction=False)
        pipe.hsetnx(key, target.name, json.dumps({"value": current, "at": now}))
        pipe.hget(key, target.name)
        _, raw = pipe.execute()
        stored: Any = json.loads(raw)
        return float(stored["value"]), float(stored["at"])


class RuleStates(_DetectionReader):
    """Rule states, trigger levels, calibrated levels and budgets, baselines and their bands:
    a source of /metrics families (socialpulse.core.metrics_server), computed once per
    evaluation tick rather than at every scrape.

    They change only when a tick is evaluated, and computing them from Redis reads and parses
    every brand's detection state: seconds at 1,000 brands, which a scrape every few seconds
    cannot pay. So the worker that evaluates :meth:`publish`-es what each tick judged by (the
    rules' levels and the baselines' expected values, computed by the tick anyway); a worker
    that does not evaluate (another holds the lock, or none has evaluated yet) computes them
    from Redis once per tick in a daemon thread (:meth:`start`).
    """

    def __init__(
        self,
        settings: DetectionConfig,
        client: redis.Redis,
        brands: Callable[[], Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(settings, client, clock)
        self.detector = detector_for(settings.alerts, settings.kpis.kpis)
        # The brands computed from Redis: those this worker exports (every configured brand
        # when None); a worker that evaluates publishes every brand it judged.
        self.brands = brands or (lambda: settings.brand_ids)
        self._families: Rendered | None = None
        self._tick: float | None = None  # the tick the families from Redis were computed for
        self._computed_for: tuple[str, ...] | None = None  # ... and the brands
        self._published: dict[str, Shown] = {}
        self._published_at: float | None = None  # monotonic
        every = settings.alerts.evaluation.every
        self._fresh_for = max(30, 3 * every)  # the evaluation lock's time to live

    def __call__(self) -> Rendered:
        """The families last computed (computed now the first time), rendered once."""
        families = self._families
        return self.refresh() if families is None else families

    def evaluating(self) -> None:
        """This worker holds the evaluation lock: it will publish, Redis need not be read."""
        self._published_at = time.monotonic()

    def publish(self, shown: Mapping[str, Shown]) -> None:
        """What this worker's evaluation judged by at its last tick, per brand evaluated."""
        self._published.update(shown)
        self._families = Rendered(self._families_of(self._published))
        self._published_at = time.monotonic()

    def start(self) -> RuleStates:
        """Compute from Redis at each tick, in a daemon thread, while nothing is published."""
        threading.Thread(target=self._run, name="rule-state-metrics", daemon=True).start()
        return self

    def refresh(self) -> Rendered:
        """Read the brands' detection state (one Redis round trip) and compute the families at
        now; none while Redis cannot be read."""
        now = self.clock()
        tick = self._tick_of(now)
        brands = tuple(self.brands())
        wanted = set(brands)
        configured = [b for b in self.settings.brands.brands if b.id in wanted]
        try:
            pipe = self.client.pipeline(transaction=False)
            for brand in configured:
                pipe.hgetall(self.keys.detection(brand.id))
            replies = pipe.execute()
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read detection state from Redis: %s", exc)
            self._families = Rendered([])
            return self._families
        shown = {
            brand.id: self.detector.shown_now(brand.id, brand.platforms, parse_state(f), now)
            for brand, f in zip(configured, replies, strict=True)
        }
        families = Rendered(self._families_of(shown))
        self._families, self._tick, self._computed_for = families, tick, brands
        return families

    def _publishing(self) -> bool:
        at = self._published_at  # or told it evaluates
        return at is not None and time.monotonic() - at < self._fresh_for

    def _tick_of(self, now: float) -> float:
        evaluation = self.settings.alerts.evaluation
        return math.floor((now - evaluation.settle) / evaluation.every) * evaluation.every

    def _run(self) -> None:
        while True:
            time.sleep(1.0)
            current = self._tick == self._tick_of(self.clock())
            if self._publishing() or (current and self._computed_for == tuple(self.brands())):
                continue
            try:
                self.refresh()
            except Exception:  # a bug here must not stop the exports for good
                log.exception("metrics: computing the rule states failed")

    def _families_of(self, shown: Mapping[str, Shown]) -> list[Family]:
        firing = Family(
            "socialpulse_alert_rule_firing",
            "1 while the alert rule fires for the brand and platform, else 0.",
            "gauge",
            ("rule", "severity", "brand", "platform"),
        )
        levels = Family(
            "socialpulse_alert_rule_trigger_level",
            "KPI value beyond which the rule's condition is over at the last evaluated tick "
            "(bound: upper for rises, lower for falls); absent while its baseline warms up.",
            "gauge",
            ("rule", "brand", "platform", "kpi", "window", "bound"),
        )
        calibrated = Family(
            "socialpulse_alert_rule_level_z",
            "The level a calibrated rule fires at, in spreads from the baseline: what the "
            "series' own surges reach `budget` times a week (start_z while it is learned).",
            "gauge",
            ("rule", "brand", "platform"),
        )
        budget = Family(
            "socialpulse_alert_rule_budget_per_week",
            "Notifications a week a calibrated rule may cost on the brand and platform (its share "
            "of alerts.yaml: budget).",
            "gauge",
            ("rule", "brand", "platform"),
        )
        expected = Family(
            "socialpulse_kpi_baseline",
            "What the learned baseline expects the KPI to be at the last evaluated tick (hour "
            "of day and day of week included); only baselines past their warm-up.",
            "gauge",
            ("brand", "platform", "window", "kpi"),
        )
        band = Family(
            "socialpulse_kpi_baseline_band",
            f"The normal range around a learned baseline: {NORMAL_BAND_Z:g} spreads below "
            "(bound lower) and above (bound upper) what it expects.",
            "gauge",
            ("brand", "platform", "window", "kpi", "bound"),
        )
        for brand in self.settings.brands.brands:
            seen = shown.get(brand.id)
            if seen is None:
                continue
            for rule in self.detector.rules_for(brand.id):
                window = format_duration(rule.window)
                for platform in rule_platforms(rule, brand.platforms):
                    rule_shown = seen.rules.get((rule.name, platform))
                    if rule_shown is None:
                        continue
                    at = (rule.name, brand.id, platform)
                    firing.add((rule.name, rule.severity, brand.id, platform),
                               1.0 if rule_shown.firing else 0.0)  # fmt: skip
                    if rule_shown.calibrated is not None:
                        calibrated.add(at, rule_shown.calibrated[0])
                        budget.add(at, rule_shown.calibrated[1])
                    for bound, level in rule_shown.levels.items():
                        levels.add((*at, rule.kpi, window, bound), level)
            for key, now_expected in seen.baselines.items():
                kpi, seconds, platform = key.split("|")
                labels = (brand.id, platform, format_duration(int(seconds)), kpi)
                expected.add(labels, now_expected.value)
                low, high = now_expected.band(NORMAL_BAND_Z)
                band.add((*labels, "lower"), low)
                band.add((*labels, "upper"), high)
        return [firing, levels, calibrated, budget, expected, band]


def initialize_label_sets(brand_ids: Sequence[str], rules: Sequence[tuple[str, str]]) -> None:
    """Each brand's evaluations and each rule's firings and clearings at 0 (``rules``: their
    names and severities)."""
    for brand in brand_ids:
        BRAND_EVALUATIONS.labels(brand)
    for name, severity in rules:
        EARLY_FIRINGS.labels(name)
        for event in ("fired", "cleared"):
            ALERT_EVENTS.labels(name, severity, event)


__all__ = ["DetectionCollector", "RuleStates"]


ALERT_EVENTS = Counter(
    "socialpulse_alert_events_total",
    "Rule firings and clearings (event: fired, cleared).",
    ["rule", "severity", "event"],
)


RULE_TICKS = Counter(
    "socialpulse_rule_ticks_total", "Evaluation ticks on which every rule of every brand ran."
)


EVALUATION_DELAY = Gauge(
    "socialpulse_alert_evaluation_delay_seconds",
    "Seconds from the last evaluated tick to its evaluation (settle time included).",
)


EARLY_FIRINGS = Counter(
    "socialpulse_alert_early_firings_total",
    "Firings sent before their tick's window was complete (counted in "
    "socialpulse_alert_events_total too): alerts.evaluation.early.",
    ["rule"],
)
EVALUATION_SECONDS = Histogram(
    "socialpulse_alert_evaluation_seconds",
    "Seconds one evaluation round took (its due ticks: every brand's windows read and every "
    "rule run); above alerts.evaluation.every it cannot keep up with its grid.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


BRAND_EVALUATIONS = Counter(
    "socialpulse_rule_evaluations_total",
    "Brand evaluations: on each tick, every rule of a brand (and its baselines) ran once.",
    ["brand"],
)
