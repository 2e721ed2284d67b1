"""Per-campaign series on /metrics, for the brands socialpulse.yaml lists under
``metrics.campaigns``, behind a cardinality guard.

Campaign ids come from events, so a flood of new ids (a bug upstream, a hostile source) must
not multiply the series Prometheus keeps without bound: only a brand's ``max_per_brand``
busiest campaigns of the longest configured window are exported (the same ones on every
worker), and the others are counted, not shown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from socialpulse.core.config_types import format_duration
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.redis_keys import RedisKeys
from streams.config import StreamConfig
from streams.counters import ALL_COUNTERS, ALL_PLATFORMS, KIND_COUNTER
from streams.kpis import busiest_columns, snapshot
from streams.store.redis_store import read_dimension_windows
from streams.windows import WindowPlan

log = logging.getLogger(__name__)

LABELS = ["brand", "platform", "campaign", "window"]
# Remembered per worker so a campaign id is counted once as dropped, not once per scrape;
# bounded, because the flood this guards against would otherwise grow it.
REMEMBERED_DROPS = 10_000

CAMPAIGNS_DROPPED = Counter(
    "socialpulse_metric_campaigns_dropped_total",
    "Campaign ids left out of the per-campaign series by the cardinality guard "
    "(metrics.campaigns.max_per_brand), each counted once per worker.",
    ["brand"],
)
CAMPAIGNS_OVER_CAP = Gauge(
    "socialpulse_metric_campaigns_over_cap",
    "Campaigns with events in the longest campaign window that have no series now, because "
    "the brand has more than metrics.campaigns.max_per_brand.",
    ["brand"],
)


def campaign_metric_name(name: str, settings: StreamConfig) -> str:
    """Prometheus name of a per-campaign value: socialpulse_campaign_<counter or KPI name>
    with the KPI's unit suffix (socialpulse_campaign_ctr_ratio)."""
    for spec in settings.kpis.kpis:
        if spec.name == name:
            return spec.metric_name.replace("socialpulse_", "socialpulse_campaign_", 1)
    return f"socialpulse_campaign_{name}"


class CampaignCollector(Collector):
    """Counters and KPIs per campaign (over all platforms) for the configured brands."""

    def __init__(self, settings: StreamConfig, client: redis.Redis):
        self.settings = settings
        self.client = client
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)
        self.config = settings.pipeline.metrics.campaigns
        w = settings.pipeline.windows
        self.plan = WindowPlan.of(self.config.windows, w.allowed_lateness, w.max_future)
        wanted = set(self.config.kpis)
        self.kpis = [k for k in settings.derived_kpis if k.name in wanted]
        self.counters = [c for c in ALL_COUNTERS if c in wanted]
        self.dropped: set[tuple[str, str]] = set()
        for brand in self.config.brands:  # at 0 until the guard drops one
            CAMPAIGNS_DROPPED.labels(brand)
            CAMPAIGNS_OVER_CAP.labels(brand)

    def describe(self) -> list[GaugeMetricFamily]:
        """Nothing up front: the families depend on what Redis holds at scrape time."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One Redis round trip per configured brand; one gauge family per configured value."""
        families = {
            name: GaugeMetricFamily(
                campaign_metric_name(name, self.settings),
                f"{name.replace('_', ' ').capitalize()} per campaign (all platforms), "
                "for the brands of metrics.campaigns.",
                labels=LABELS,
            )
            for name in [*self.counters, *(k.name for k in self.kpis)]
        }
        longest = max(self.plan.windows)
        for brand in self.config.brands:
            try:
                by_window = read_dimension_windows(
                    self.client, self.keys, self.plan, brand, "campaign"
                )
            except REDIS_ERRORS as exc:
                log.warning("metrics: cannot read campaign counts of %s: %s", brand, exc)
                continue
            active = {c for (name, c), n in by_window[longest].items() if n and name in EVENTS}
            kept = busiest_columns(by_window[longest], self.config.max_per_brand)
            self._count_dropped(brand, active - set(kept))
            keep = set(kept)
            for window, counts in by_window.items():
                mine = {key: n for key, n in counts.items() if key[1] in keep}
                snap = snapshot(brand, window, mine, kept, self.kpis)
                shown = format_duration(window)
                for campaign in kept:
                    labels = [brand, ALL_PLATFORMS, campaign, shown]
                    row = snap.counters[campaign]
                    for counter in self.counters:
                        if counter in row:  # optional values only where known
                            families[counter].add_metric(labels, row[counter])
                    for kpi, value in snap.derived[campaign].items():
                        if value is not None:
                            families[kpi].add_metric(labels, value)
        yield from families.values()

    def _count_dropped(self, brand: str, dropped: set[str]) -> None:
        CAMPAIGNS_OVER_CAP.labels(brand).set(len(dropped))
        new = {(brand, c) for c in dropped} - self.dropped
        if new:
            CAMPAIGNS_DROPPED.labels(brand).inc(len(new))
            log.warning(
                "metrics: %d more campaigns of %s have no series (over max_per_brand %d)",
                len(new),
                brand,
                self.config.max_per_brand,
            )
            if len(self.dropped) + len(new) > REMEMBERED_DROPS:
                self.dropped.clear()
            self.dropped |= new


EVENTS = frozenset(KIND_COUNTER.values())

__all__ = ["CAMPAIGNS_DROPPED", "CampaignCollector", "campaign_metric_name"]
