"""Prometheus metrics of the worker: rolling KPI counts read from Redis, and pipeline health.

Rolling counts come from Redis (the single source of truth), whichever worker counted the
events: the running totals at every scrape, and the window gauges at every scrape
(``metrics.gauges: all``) or once every few seconds in the alert evaluation process
(``boards``: what a scrape of 1,000 brands cannot read in time). A brand's counts are on the
/metrics of the worker holding its partition (socialpulse.core.brand_partitions): boards
aggregate them with ``max()``; pipeline counters are per worker and are aggregated with
``sum()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from http.server import ThreadingHTTPServer
from typing import get_args

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

from socialpulse.core.brand_partitions import OwnedBrands
from socialpulse.core.config_types import format_duration
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.exposition import Family, LabelText, number_text
from socialpulse.core.metrics_server import Source, serve
from socialpulse.core.redis_keys import RedisKeys
from streams.config import StreamConfig
from streams.counters import ALL_COUNTERS, CAN_FALL, COMPETITOR_MENTIONS, STARTS_AT_ZERO
from streams.decoding import INVALID_REASONS
from streams.kpis import brand_snapshots, with_competitor_mentions
from streams.sentiment import Source as SentimentSource
from streams.snapshots import Outcome
from streams.store.redis_store import read_windows
from streams.windows import WindowPlan

log = logging.getLogger(__name__)

# `_created` series double the scrape size and no board uses them.
disable_created_metrics()

EVENTS_CONSUMED = Counter(
    "socialpulse_events_consumed_total",
    "Events read from a Kafka topic (each event of an envelope counts).",
    ["topic"],
)
MESSAGES_CONSUMED = Counter(
    "socialpulse_messages_consumed_total",
    "Kafka messages read from a topic (one event, or an envelope of many).",
    ["topic"],
)
EVENTS_COUNTED = Counter(
    "socialpulse_events_counted_total",
    "Events whose effect on the rolling counts was applied in Redis (first delivery).",
    ["topic"],
)
EVENTS_DUPLICATE = Counter(
    "socialpulse_events_duplicate_total",
    "Redelivered events (an id already counted) that changed nothing.",
    ["topic"],
)
EVENTS_INVALID = Counter(
    "socialpulse_events_invalid_total",
    "Events sent to the dead-letter topic, by reason: not decodable, invalid, too far ahead, "
    "outside brands.yaml (strict), or processing_error (processing them raised).",
    ["topic", "reason"],
)
EVENTS_UNTRACKED = Counter(
    "socialpulse_events_untracked_total",
    "Events of brands or platforms outside brands.yaml that lenient mode (cleaning.strict: "
    "false) did not count because it already tracks cleaning.max_unknown of them; they are "
    "dead-lettered (unknown_brand, unknown_platform).",
    ["topic"],
)
EVENTS_FILTERED = Counter(
    "socialpulse_events_filtered_total",
    "New events left out of the KPIs: reason bot (flagged or listed) or author_rate (the author "
    "posts faster than cleaning.max_mentions_per_author_per_minute).",
    ["topic", "reason"],
)
EVENTS_TOO_LATE = Counter(
    "socialpulse_events_too_late_total",
    "Events older than the allowed lateness when they arrived, left out of the KPIs.",
    ["topic"],
)
SNAPSHOTS = Counter(
    "socialpulse_snapshots_total",
    "Metric snapshots by what they did: counted (totals grew or went down), started (first of "
    "an object without a publication time: a starting point), advanced (newer, same totals), "
    "unchanged (a duplicate), out_of_order (older than the newest seen), untracked (object "
    "older than snapshots.track_for).",
    ["outcome"],
)
SNAPSHOT_CORRECTIONS = Counter(
    "socialpulse_snapshots_corrected_total",
    "Snapshot totals that went down (an unlike, a platform correction), by metric: counted as "
    "corrections, never as negative increments.",
    ["metric"],
)
SENTIMENT_SOURCE = Counter(
    "socialpulse_mentions_sentiment_total",
    "Mentions by where their sentiment came from: upstream (in the event), or scored here by "
    "vader (English), snownlp (Chinese) or emoji (the Emoji Sentiment Ranking).",
    ["source"],
)
REDIS_RETRIES = Counter(
    "socialpulse_redis_retries_total", "Batches retried because Redis did not answer."
)
EVENT_TO_VISIBLE = Histogram(
    "socialpulse_event_to_visible_seconds",
    "From an event's own time to its counts being in Redis (what a board can show): the "
    "source's delay plus SocialPulse's. Events counted for the first time only.",
    ["topic"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
ARRIVAL_TO_VISIBLE = Histogram(
    "socialpulse_arrival_to_visible_seconds",
    "From a message's arrival in Kafka (its broker or producer timestamp) to its events' "
    "counts being in Redis: SocialPulse's own latency.",
    ["topic"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REDIS_ROUNDTRIP = Histogram(
    "socialpulse_redis_roundtrip_seconds",
    "Redis round trips by operation: count_batch (a batch's counts), count_snapshots (a batch "
    "of metric snapshots), read_windows (the window gauges read at a scrape, metrics.gauges: "
    "all), read_totals (a scrape's running totals).",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
KPI_READ_ERRORS = Counter(
    "socialpulse_kpi_read_errors_total", "Scrapes that could not read rolling counts from Redis."
)

# Every outcome a counter can count, so that a board shows 0 rather than "no data" until the
# first one happens (and rate() sees the first increase).
FILTER_REASONS = ("bot", "author_rate")


def initialize_label_sets(settings: StreamConfig) -> None:
    """Create every known label combination of the stream stage at 0 (topics, dead-letter and
    filter reasons, sentiment sources), so a board shows 0 rather than "no data" until the first
    one happens (and rate() sees the first increase)."""
    for topic in (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions):
        for metric in (
            EVENTS_CONSUMED,
            MESSAGES_CONSUMED,
            EVENTS_COUNTED,
            EVENTS_DUPLICATE,
            EVENTS_TOO_LATE,
            EVENT_TO_VISIBLE,
            ARRIVAL_TO_VISIBLE,
            EVENTS_UNTRACKED,
        ):
            metric.labels(topic)
        for reason in INVALID_REASONS:
            EVENTS_INVALID.labels(topic, reason)
        for reason in FILTER_REASONS:
            EVENTS_FILTERED.labels(topic, reason)
    for source in get_args(SentimentSource):
        SENTIMENT_SOURCE.labels(source)
    for operation in ("count_batch", "count_snapshots", "read_windows", "read_totals"):
        REDIS_ROUNDTRIP.labels(operation)
    for outcome in get_args(Outcome):
        SNAPSHOTS.labels(outcome)
    snapshots = settings.pipeline.topics.snapshots
    for metric in (EVENTS_CONSUMED, MESSAGES_CONSUMED, EVENTS_COUNTED, ARRIVAL_TO_VISIBLE,
                   EVENTS_UNTRACKED):  # fmt: skip
        metric.labels(snapshots)
    for reason in INVALID_REASONS:
        EVENTS_INVALID.labels(snapshots, reason)


_HELP = {
    "mentions": "Mentions of the brand in the rolling window.",
    "mentions_positive": "Mentions with positive sentiment in the rolling window.",
    "mentions_negative": "Mentions with negative sentiment in the rolling window.",
    "mentions_neutral": "Mentions with neutral sentiment in the rolling window.",
    "filtered": "Events left out of the KPIs (bots, over-rate authors) in the rolling window.",
}


def metric_name(counter: str) -> str:
    """Prometheus name of a rolling counter, e.g. likes -> socialpulse_likes."""
    return f"socialpulse_{counter}"


class WindowGauges:
    """Every exported window of every rolling counter and derived KPI as gauges, per brand and
    platform (derived KPIs also for platform="all"), read from Redis for the brands asked:
    at every scrape (RollingCounts), or once every few seconds in the alert evaluation process
    (socialpulse.app.evaluator, with ``metrics.gauges: boards``). ``gauges``: only these
    (counter or KPI, window seconds), read from Redis with only the counters they need; every
    one when None."""

    def __init__(
        self,
        settings: StreamConfig,
        client: redis.Redis,
        gauges: frozenset[tuple[str, int]] | None = None,
    ):
        self.settings = settings
        self.client = client
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)
        self.gauges = gauges
        named = {name for name, _ in gauges or ()}
        self.kpis = [k for k in settings.derived_kpis if gauges is None or k.name in named]
        # The counters those gauges are computed from (competitors' mentions: their mentions).
        self.reads: frozenset[str] | None = None
        if gauges is not None:
            needed = set(named - {k.name for k in self.kpis})
            needed.update(n for k in self.kpis for n in k.formula.names if n in ALL_COUNTERS)
            if COMPETITOR_MENTIONS in needed:
                needed.add("mentions")
            self.reads = frozenset(needed)

    def families(self, brands: Sequence[str]) -> list[Family]:
        """:meth:`read`, or no family at all while Redis cannot be read (counted, logged)."""
        try:
            return self.read(brands)
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read rolling counts from Redis: %s", exc)
            return []

    def read(self, brands: Sequence[str]) -> list[Family]:
        """The gauges of ``brands``, all windows in one Redis round trip: one family per
        counter and per derived KPI; a KPI with no value (zero denominator) has no sample.
        Raises what the Redis client raises."""
        windows = self.settings.exported_windows
        if self.gauges is not None:
            windows = tuple(w for w in windows if any(w == at for _, at in self.gauges))
        if not windows or not brands:
            return []
        every = self.settings.window_plan
        plan = WindowPlan.of(windows, every.allowed_lateness, every.max_future)
        with REDIS_ROUNDTRIP.labels("read_windows").time():
            counts = read_windows(
                self.client, self.keys, plan, self._with_rivals(brands), only=self.reads
            )
        counts = with_competitor_mentions(counts, self.settings.competitors)
        labels = ("brand", "platform", "window")
        counters = {
            counter: Family(
                metric_name(counter),
                _HELP.get(
                    counter, f"{counter.replace('_', ' ').capitalize()} in the rolling window."
                ),
                "gauge",
                labels,
            )
            for counter in ALL_COUNTERS
        }
        derived = {
            spec.name: Family(
                spec.metric_name, f"{spec.help} Formula: {spec.formula}.", "gauge", labels
            )
            for spec in self.settings.kpis.kpis
        }
        exported, wanted = set(brands), self.gauges
        for brand in self.settings.brands.brands:
            if brand.id not in exported:
                continue
            by_window = {w: counts[(brand.id, w)] for w in plan.windows}
            snapshots = brand_snapshots(brand.id, by_window, brand.platforms, self.kpis, self.reads)
            for window, snap in snapshots.items():
                shown = format_duration(window)
                for platform, row in snap.counters.items():
                    for counter, n in row.items():
                        if wanted is None or (counter, window) in wanted:
                            counters[counter].add((brand.id, platform, shown), n)
                for platform, values in snap.derived.items():
                    for name, value in values.items():
                        if value is not None and (wanted is None or (name, window) in wanted):
                            derived[name].add((brand.id, platform, shown), value)
        return [
            *(f for f in counters.values() if wanted is None or f.samples),
            *(f for f in derived.values() if wanted is None or f.samples),
        ]

    def _with_rivals(self, brands: Sequence[str]) -> list[str]:
        # Share of voice reads the competitors' mentions, whoever exports the competitors.
        rivals = [r for b in brands for r in self.settings.competitors.get(b, ())]
        return list(dict.fromkeys([*brands, *rivals]))


class RollingCounts:
    """Every running total per brand and platform, read from Redis at scrape time, and, unless
    ``windows`` is False (the window gauges come from elsewhere), the window gauges
    (WindowGauges, ``gauges`` of them): a source of /metrics families
    (socialpulse.core.metrics_server). Of the brands in ``owned`` (the worker's share,
    socialpulse.core.brand_partitions), or of every configured brand when None."""

    def __init__(
        self,
        settings: StreamConfig,
        client: redis.Redis,
        owned: OwnedBrands | None = None,
        gauges: frozenset[tuple[str, int]] | None = None,
        windows: bool = True,
    ):
        self.settings = settings
        self.client = client
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)
        self.owned = owned
        self.windows = WindowGauges(settings, client, gauges) if windows else None

    def brands(self) -> Sequence[str]:
        """The brands this scrape shows, in the configured order."""
        return self.settings.brand_ids if self.owned is None else self.owned.brands

    def __call__(self) -> Iterator[Family]:
        """The running totals (one HGETALL per brand), then the window gauges, if any."""
        brands = self.brands()
        yield from self._totals(brands)
        if self.windows is not None:
            yield from self.windows.families(brands)

    def _totals(self, brands: Sequence[str]) -> Iterator[Family]:
        # One HGETALL per brand, whatever the windows: what a scrape of many brands can afford.
        try:
            with REDIS_ROUNDTRIP.labels("read_totals").time():
                pipe = self.client.pipeline(transaction=False)
                for brand in brands:
                    pipe.hgetall(self.keys.totals(brand))
                replies = pipe.execute()
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read running totals from Redis: %s", exc)
            return
        families = {
            counter: Family(
                f"socialpulse_counted_{counter}",
                f"Running total of {counter} since the brand was first counted (by platform); "
                "a window is the last total less the one before it, max() across workers.",
                "counter",
                ("brand", "platform"),
            )
            if counter not in CAN_FALL
            else Family(
                f"socialpulse_counted_{counter}",
                f"Running sum of {counter} since the brand was first counted (by platform); it "
                "can fall (a gauge): a window is the last sum less the one before it.",
                "gauge",
                ("brand", "platform"),
            )
            for counter in ALL_COUNTERS
        }
        # Each sample's line is written as its field is read: at 1,000 brands a scrape has
        # 100,000s of them, and a tuple and a float each cost as much as the Redis read.
        starts = {c: f'{f.sample_name}{{brand="' for c, f in families.items()}
        escape = LabelText()
        platforms = {b.id: b.platforms for b in self.settings.brands.brands}
        for brand, totals in zip(brands, replies, strict=True):
            shown = escape(brand)
            totals = totals or {}
            # Mentions at 0 on a configured platform that has counted none: Prometheus then
            # knows the brand's platform before its first count, so a board's window counts a
            # total that began inside it from 0 (socialpulse.app.boards.from_totals). One
            # series a platform: a 0 for every counter would more than double the scrape.
            for platform in platforms.get(brand, ()):
                if f"{STARTS_AT_ZERO}|{platform}" not in totals:
                    families[STARTS_AT_ZERO].lines.append(
                        f'{starts[STARTS_AT_ZERO]}{shown}",platform="{escape(platform)}"}} 0.0\n'
                    )
            for name, number in totals.items():
                counter, _, platform = name.partition("|")
                start = starts.get(counter)
                value = number_text(number)
                if start is None or value is None:
                    continue  # a counter of a newer release, or not a number: not ours to show
                families[counter].lines.append(
                    f'{start}{shown}",platform="{escape(platform)}"}} {value}\n'
                )
        yield from (f for f in families.values() if f.lines)


def serve_metrics(
    settings: StreamConfig,
    client: redis.Redis,
    registry: CollectorRegistry | None = None,
    collectors: Sequence[Collector] = (),
    sources: Sequence[Source] = (),
    owned: OwnedBrands | None = None,
    gauges: frozenset[tuple[str, int]] | None = None,
    windows: bool = True,
) -> ThreadingHTTPServer:
    """Start the /metrics HTTP server (a daemon thread) with pipeline and rolling-count metrics
    (of the brands in ``owned``, all when None; window gauges: ``gauges`` read at each scrape,
    or none here when ``windows`` is False, as RollingCounts takes them), any other
    ``collectors`` (small, fixed families) and ``sources`` (families that grow with brands,
    e.g. the detection layer's rule states, and window gauges computed elsewhere)."""
    from prometheus_client import REGISTRY

    target = registry or REGISTRY
    initialize_label_sets(settings)
    for collector in collectors:
        target.register(collector)
    worker = settings.pipeline.worker
    server = serve(
        target,
        [RollingCounts(settings, client, owned, gauges, windows), *sources],
        worker.metrics_host,
        worker.metrics_port,
    )
    log.info("metrics: serving http://%s:%d/metrics", worker.metrics_host, worker.metrics_port)
    return server
