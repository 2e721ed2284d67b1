"""The stream stage's configuration: ``socialpulse.yaml``'s windows, worker, cleaning and metrics
sections, and the derived KPIs of ``kpis.yaml`` (formulas over the counters)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from socialpulse.core.config import (
    BrandsFile,
    KafkaSettings,
    PrometheusSettings,
    RedisSettings,
    TopicSettings,
)
from socialpulse.core.config_types import Duration, Strict, format_duration
from streams.counters import ALL_COUNTERS
from streams.formulas import compile_formula
from streams.kpis import WINDOW_NAMES, DerivedKpi
from streams.windows import MAX_BUCKETS, WindowPlan, tier_for

FORMULA_NAMES = frozenset([*ALL_COUNTERS, *WINDOW_NAMES])


class WindowSettings(Strict):
    rolling: list[Duration] = Field(default_factory=lambda: [60, 300, 900, 3600, 86400])
    allowed_lateness: Duration = 600
    max_future: Duration = 300

    @field_validator("rolling")
    @classmethod
    def _windows_have_a_tier(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("list at least one window, e.g. [5m]")
        for window in value:
            if tier_for(window) is None:
                raise ValueError(
                    f"{format_duration(window)} is not a whole number of 10s buckets or is "
                    f"longer than {MAX_BUCKETS} hours"
                )
        return sorted(set(value))


class SnapshotSettings(Strict):
    """``snapshots``: how long an object's last totals are kept to count increments against."""

    # Past this age (from publication, or the first snapshot when that is not known) an
    # object's snapshots are no longer counted and its state is gone: memory stays bounded by
    # the objects polled within it.
    track_for: Duration = Field(30 * 86400, ge=3600, le=400 * 86400)


class WorkerSettings(Strict):
    app_id: str = Field("socialpulse", pattern=r"^[A-Za-z0-9_.-]+$")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9300, ge=1, le=65535)
    # A batch is one Redis round trip: up to batch_size Kafka messages or batch_bytes of them
    # (envelopes hold many events), or fewer once its first has waited batch_within seconds.
    # Large batches under a backlog: with one event per message, 10,000 counted ~35% faster
    # than 500 (README, Benchmark).
    batch_size: int = Field(10_000, ge=1, le=100_000)
    batch_bytes: int = Field(16 * 2**20, ge=2**16, le=2**30)
    batch_within: float = Field(0.2, gt=0, le=10)
    # How soon a crashed worker's partitions move to the others (Kafka's minimum is 6s).
    session_timeout: Duration = Field(10, ge=6, le=300)
    # Offsets are committed this often; after a crash, events since the last commit are
    # redelivered (and ignored by id), so this bounds the replay, not correctness.
    commit_interval: float = Field(2.8, gt=0, le=300)


class CleaningSettings(Strict):
    # Author handles (mentions) and user ids (interactions) always left out, any case.
    bot_authors: list[str] = Field(default_factory=list)
    # A mention author over this many mentions of one brand in a minute is left out (0: off).
    max_mentions_per_author_per_minute: int = Field(20, ge=0)
    # Strict (the default): events of a brand brands.yaml does not list, or of a platform its
    # brand does not list, are dead-lettered (unknown_brand, unknown_platform): nothing shows
    # them, and each new one would add keys to Redis.
    strict: bool = True
    # Lenient mode (strict: false) counts them, but at most this many brands and brand/platform
    # pairs outside brands.yaml at a time (over all workers); events of more are dead-lettered
    # and counted in socialpulse_events_untracked_total.
    max_unknown: int = Field(100, ge=0, le=100_000)

    @field_validator("bot_authors")
    @classmethod
    def _casefold(cls, value: list[str]) -> list[str]:
        return [author.strip().casefold() for author in value]


class CampaignMetrics(Strict):
    # Brands whose campaigns get their own series (label campaign); none by default, since
    # campaign ids come from events and each one multiplies the series Prometheus keeps.
    brands: list[str] = Field(default_factory=list)
    windows: list[Duration] = Field(default_factory=lambda: [3600, 86400])
    # Counters and kpis.yaml KPIs exported per campaign (over all platforms together).
    kpis: list[str] = Field(
        default_factory=lambda: [
            "impressions",
            "clicks",
            "conversions",
            "spend",
            "revenue",
            "ctr",
            "conversion_rate",
            "cpc",
            "cac",
            "roi",
        ]
    )
    # The cardinality guard: the busiest N campaigns of a brand (by events in the longest
    # window) get series; the others are left out and counted in
    # socialpulse_metric_campaigns_dropped_total.
    max_per_brand: int = Field(20, ge=1, le=1000)


class RollupSettings(Strict):
    """``rollups``: the long view's exact daily counts per brand (streams.store.day_rollups)."""

    keep_days: int = Field(400, ge=1, le=3660)  # then a day's counts expire


class MetricsSettings(Strict):
    campaigns: CampaignMetrics = CampaignMetrics()
    # The rolling windows /metrics exports as gauges (every counter and KPI per brand, platform
    # and window, read from Redis at each scrape); default: all of windows.rolling. The
    # running totals (socialpulse_counted_<counter>_total) are always exported: one read per
    # brand, from which Prometheus derives any window (see docs/metrics.md for many brands).
    windows: list[Duration] | None = None
    # Which brands a worker's /metrics shows: "owned", those keyed to the Kafka partitions it
    # holds (each brand by one worker of the group; Prometheus scrapes every worker); "all",
    # every configured brand on every worker (N workers, N copies: for a scraper that reaches
    # one worker of several, e.g. through a load balancer).
    export_brands: Literal["owned", "all"] = "owned"
    # Which window gauges: "boards", only those the Grafana boards read (what they cannot
    # compute from the running totals, and the KPIs of the panels set against an alert rule),
    # computed every 10 s by the alert evaluation process, so a scrape of 1,000 brands reads
    # nothing of them; "all", every counter and KPI in every window above, read from Redis at
    # each scrape (exact to the moment: for a few brands, and what the tests read).
    gauges: Literal["all", "boards"] = "boards"


KPI_UNITS = ("count", "ratio", "per_minute", "currency")


_METRIC_SUFFIX = {"ratio": "_ratio", "per_minute": "_per_minute"}


class KpiSpec(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    formula: str
    unit: str = "count"
    help: str = Field(min_length=1)
    # Rolling windows the KPI is computed for (default: all of socialpulse.yaml's).
    windows: list[Duration] | None = Field(None, min_length=1)

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if value not in KPI_UNITS:
            raise ValueError(f"{value!r} is not a unit ({', '.join(KPI_UNITS)})")
        return value

    @field_validator("formula")
    @classmethod
    def _valid_formula(cls, value: str) -> str:
        compile_formula(value, FORMULA_NAMES)  # FormulaError is a ValueError: reported here
        return value

    @property
    def metric_name(self) -> str:
        """Prometheus name: socialpulse_<name> with the unit's suffix (_ratio, _per_minute)."""
        suffix = _METRIC_SUFFIX.get(self.unit, "")
        return f"socialpulse_{self.name.removesuffix(suffix)}{suffix}"

    def derived(self) -> DerivedKpi:
        """The compiled KPI."""
        return DerivedKpi(
            self.name,
            compile_formula(self.formula, FORMULA_NAMES),
            self.unit,
            self.help,
            frozenset(self.windows) if self.windows else None,
        )


class KpisFile(Strict):
    """config/kpis.yaml."""

    kpis: list[KpiSpec] = Field(default_factory=list)

    @field_validator("kpis")
    @classmethod
    def _unique_names(cls, value: list[KpiSpec]) -> list[KpiSpec]:
        seen: set[str] = set()
        for kpi in value:
            if kpi.name in seen:
                raise ValueError(f"KPI {kpi.name!r} is declared twice")
            if kpi.name in ALL_COUNTERS:
                raise ValueError(f"KPI {kpi.name!r} has the name of a counter; choose another")
            seen.add(kpi.name)
        return value


class PipelineFile(Strict):
    """config/socialpulse.yaml."""

    @field_validator("metrics")
    @classmethod
    def _exported_windows_are_rolling(
        cls, metrics: MetricsSettings, info: ValidationInfo
    ) -> MetricsSettings:
        windows = info.data.get("windows")
        rolling = windows.rolling if isinstance(windows, WindowSettings) else []
        for window in metrics.windows or ():
            if window not in rolling:
                shown = ", ".join(format_duration(w) for w in rolling)
                raise ValueError(
                    f"windows: {format_duration(window)} is not one of windows.rolling ({shown})"
                )
        return metrics

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    windows: WindowSettings = WindowSettings()
    snapshots: SnapshotSettings = SnapshotSettings()
    worker: WorkerSettings = WorkerSettings()
    cleaning: CleaningSettings = CleaningSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    metrics: MetricsSettings = MetricsSettings()
    rollups: RollupSettings = RollupSettings()


class StreamConfig(BaseModel):
    """What the stream stage (and the ingest gateway in front of it) takes of the
    configuration: socialpulse.yaml, the brands and the KPIs."""

    model_config = ConfigDict(frozen=True)

    pipeline: PipelineFile
    brands: BrandsFile
    kpis: KpisFile

    @property
    def window_plan(self) -> WindowPlan:
        """Bucket tiers, expiries and lateness rules for the configured windows."""
        w = self.pipeline.windows
        return WindowPlan.of(w.rolling, w.allowed_lateness, w.max_future)

    @property
    def exported_windows(self) -> tuple[int, ...]:
        """The rolling windows /metrics exports as gauges (metrics.windows, default all)."""
        chosen = self.pipeline.metrics.windows
        return tuple(sorted(self.pipeline.windows.rolling if chosen is None else set(chosen)))

    @property
    def derived_kpis(self) -> list[DerivedKpi]:
        """The KPIs of config/kpis.yaml, compiled."""
        return [spec.derived() for spec in self.kpis.kpis]

    @property
    def competitors(self) -> dict[str, list[str]]:
        """Brand id -> the ids of its competitors (brands without any are left out)."""
        return {b.id: b.competitors for b in self.brands.brands if b.competitors}

    @property
    def brand_ids(self) -> list[str]:
        """Ids of the configured brands, in file order."""
        return [brand.id for brand in self.brands.brands]

    @property
    def known(self) -> dict[str, frozenset[str]]:
        """Each brand of brands.yaml and its platforms."""
        return {b.id: frozenset(b.platforms) for b in self.brands.brands}

    @property
    def strict_known(self) -> dict[str, frozenset[str]] | None:
        """With cleaning.strict, each brand of brands.yaml and its platforms (events of others
        are refused); None when strict mode is off."""
        if not self.pipeline.cleaning.strict:
            return None
        return self.known
