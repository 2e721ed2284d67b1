"""Load and validate SocialPulse's YAML configuration.

Three files live in the config folder (``config/`` in the checkout, or ``$SOCIALPULSE_CONFIG_DIR``):

- ``socialpulse.yaml``: Kafka, topics, Redis, windows, the worker and the local stack's addresses;
- ``brands.yaml``: the brands watched and their platforms;
- ``alerts.yaml``: the Slack channel, alert rules, baselines, benchmarks and targets;
- ``kpis.yaml``: derived KPIs, formulas over the counters of a window.

Every file is validated on load; a problem stops start-up with a :class:`ConfigError` that names
the file, the key and what is wrong, e.g.
``config/alerts.yaml: rules.0.window: '7x' is not a duration (use 30s, 5m, 1h)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from alerts.oncall import IncidentSettings
from alerts.rules import BaselineSettings, EvaluationSettings, Rule, Target
from socialpulse.config_types import Duration, Strict, format_duration
from socialpulse.paths import project_home
from streams.counters import ALL_COUNTERS
from streams.formulas import compile_formula
from streams.kpis import WINDOW_NAMES, DerivedKpi
from streams.windows import MAX_BUCKETS, TIERS, WindowPlan, tier_for

FORMULA_NAMES = frozenset([*ALL_COUNTERS, *WINDOW_NAMES])

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid; the message says where and why."""


_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class KafkaSettings(Strict):
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
        return value

    @property
    def first_port(self) -> int:
        """Port of the first bootstrap server (the one the local stack runs)."""
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


class TopicSettings(Strict):
    mentions: str = "social.mentions"
    interactions: str = "social.interactions"
    dead_letter: str = "social.deadletter"


class RedisSettings(Strict):
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("sp", pattern=r"^[A-Za-z0-9_.-]+$")
    # True: ``url`` is one node of a Redis Cluster; the client discovers the others.
    cluster: bool = False

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ValueError(f"{value!r} is not a Redis URL (e.g. redis://127.0.0.1:6379/0)")
        return value

    @property
    def port(self) -> int:
        """TCP port of the configured Redis."""
        return urlparse(self.url).port or 6379


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


class WorkerSettings(Strict):
    app_id: str = Field("socialpulse", pattern=r"^[A-Za-z0-9_.-]+$")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9300, ge=1, le=65535)
    batch_size: int = Field(500, ge=1, le=100_000)
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


class PrometheusSettings(Strict):
    url: str = "http://127.0.0.1:9090"

    @property
    def port(self) -> int:
        """TCP port Prometheus listens on."""
        return urlparse(self.url).port or 9090


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


class MetricsSettings(Strict):
    campaigns: CampaignMetrics = CampaignMetrics()


class PipelineFile(Strict):
    """config/socialpulse.yaml."""

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    windows: WindowSettings = WindowSettings()
    worker: WorkerSettings = WorkerSettings()
    cleaning: CleaningSettings = CleaningSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    metrics: MetricsSettings = MetricsSettings()


class Brand(Strict):
    id: str = Field(pattern=_NAME)
    name: str
    platforms: list[str] = Field(min_length=1)
    # Ids of other brands in this file whose mentions this brand's share of voice is against.
    competitors: list[str] = Field(default_factory=list)

    @field_validator("platforms")
    @classmethod
    def _platform_names(cls, value: list[str]) -> list[str]:
        for platform in value:
            if not re.match(_NAME, platform):
                raise ValueError(f"{platform!r} is not a platform id (lowercase, e.g. instagram)")
        return value


class BrandsFile(Strict):
    """config/brands.yaml."""

    brands: list[Brand] = Field(min_length=1)

    @field_validator("brands")
    @classmethod
    def _unique_ids(cls, value: list[Brand]) -> list[Brand]:
        seen: set[str] = set()
        for brand in value:
            if brand.id in seen:
                raise ValueError(f"brand id {brand.id!r} is listed twice")
            seen.add(brand.id)
        for brand in value:
            for rival in brand.competitors:
                if rival not in seen or rival == brand.id:
                    raise ValueError(
                        f"{brand.id}: competitor {rival!r} is not another brand in this file "
                        "(competitors are tracked as brands too, so their mentions are counted)"
                    )
        return value


class SlackSettings(Strict):
    channel: str = Field(min_length=1)
    # Used only when SLACK_BOT_TOKEN is unset: the project's local Slack Web API stub.
    stub_url: str = "http://127.0.0.1:9310/api/"

    @property
    def stub_port(self) -> int:
        """TCP port of the local Slack stub."""
        return urlparse(self.stub_url).port or 80


class AlertsFile(Strict):
    """config/alerts.yaml."""

    slack: SlackSettings
    evaluation: EvaluationSettings = EvaluationSettings()
    baselines: BaselineSettings = BaselineSettings()
    rules: list[Rule] = Field(default_factory=list)
    # Reference values per KPI (e.g. an industry engagement rate), shown beside the baselines.
    benchmarks: dict[str, float] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)
    incidents: IncidentSettings = IncidentSettings()

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, value: list[Rule]) -> list[Rule]:
        names = [rule.name for rule in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; declared twice: {', '.join(twice)}")
        return value

    @field_validator("evaluation")
    @classmethod
    def _whole_buckets(cls, value: EvaluationSettings) -> EvaluationSettings:
        if value.every % TIERS[0]:
            raise ValueError(
                f"every: {format_duration(value.every)} is not a multiple of {TIERS[0]}s "
                "(the finest bucket); use 10s, 20s, 30s, 1m"
            )
        return value


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


class Settings(BaseModel):
    """The whole validated configuration, as the worker, CLI and stack use it."""

    model_config = ConfigDict(frozen=True)

    config_dir: Path
    pipeline: PipelineFile
    brands: BrandsFile
    alerts: AlertsFile
    kpis: KpisFile

    @property
    def window_plan(self) -> WindowPlan:
        """Bucket tiers, expiries and lateness rules for the configured windows."""
        w = self.pipeline.windows
        return WindowPlan.of(w.rolling, w.allowed_lateness, w.max_future)

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


# Deployment overrides (docker-compose points the worker at other hosts); dotted path into
# socialpulse.yaml. Kept explicit so that `grep` finds every variable the worker reads.
ENV_OVERRIDES = {
    "SOCIALPULSE_KAFKA_BOOTSTRAP": ("kafka", "bootstrap_servers"),
    "SOCIALPULSE_REDIS_URL": ("redis", "url"),
    "SOCIALPULSE_REDIS_CLUSTER": ("redis", "cluster"),
    "SOCIALPULSE_METRICS_HOST": ("worker", "metrics_host"),
    "SOCIALPULSE_METRICS_PORT": ("worker", "metrics_port"),
}
SLACK_STUB_URL_ENV = "SOCIALPULSE_SLACK_STUB_URL"
# In a container the Slack button endpoint listens on 0.0.0.0; the port mapping keeps it local.
INTERACTIVITY_HOST_ENV = "SOCIALPULSE_INTERACTIVITY_HOST"
# Several workers on one machine each need their own button endpoint port.
INTERACTIVITY_PORT_ENV = "SOCIALPULSE_INTERACTIVITY_PORT"


def default_config_dir() -> Path:
    """The config folder: $SOCIALPULSE_CONFIG_DIR, else config/ in the project home."""
    env = os.environ.get("SOCIALPULSE_CONFIG_DIR")
    return Path(env) if env else project_home() / "config"


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling against the documented keys)"
    if error["type"] == "missing":
        return "required key is missing"
    return message


def read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """A YAML file's top-level mapping; ConfigError naming ``shown`` when it is not one."""
    if not path.is_file():
        raise ConfigError(f"{shown}: file not found (copy it from the project's config/ folder)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: (top level): expected a mapping of keys, got {type(data).__name__}"
        )
    return data


def validate_model(model: type[M], data: dict[str, Any], shown: str) -> M:
    """``data`` as ``model``; ConfigError with one line per problem: file, key, what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{shown}: {_location(e['loc'])}: {_explain(dict(e))}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def _apply_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in environ:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                continue  # the validator reports the malformed section itself
            data[section][key] = environ[var]


def shown_path(path: Path) -> str:
    """A config file's path as error messages show it: relative to the working folder if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_settings(
    config_dir: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read, validate and cross-check the three config files; raise ConfigError on any problem."""
    folder = Path(config_dir) if config_dir else default_config_dir()
    env = dict(os.environ if environ is None else environ)

    def shown(name: str) -> str:
        return shown_path(folder / name)

    pipeline_data = read_yaml(folder / "socialpulse.yaml", shown("socialpulse.yaml"))
    _apply_env_overrides(pipeline_data, env)
    pipeline = validate_model(PipelineFile, pipeline_data, shown("socialpulse.yaml"))
    brands = validate_model(
        BrandsFile, read_yaml(folder / "brands.yaml", shown("brands.yaml")), shown("brands.yaml")
    )
    alerts_data = read_yaml(folder / "alerts.yaml", shown("alerts.yaml"))
    if SLACK_STUB_URL_ENV in env and isinstance(alerts_data.get("slack"), dict):
        alerts_data["slack"]["stub_url"] = env[SLACK_STUB_URL_ENV]
    for name, key in ((INTERACTIVITY_HOST_ENV, "host"), (INTERACTIVITY_PORT_ENV, "port")):
        if name in env and isinstance(alerts_data.get("incidents"), dict):
            endpoint = alerts_data["incidents"].setdefault("interactivity", {})
            if isinstance(endpoint, dict):
                endpoint[key] = env[name]
    alerts = validate_model(AlertsFile, alerts_data, shown("alerts.yaml"))

    kpis = validate_model(
        KpisFile, read_yaml(folder / "kpis.yaml", shown("kpis.yaml")), shown("kpis.yaml")
    )
    for index, kpi in enumerate(kpis.kpis):
        for window in kpi.windows or ():
            if window not in pipeline.windows.rolling:
                windows = ", ".join(format_duration(w) for w in pipeline.windows.rolling)
                raise ConfigError(
                    f"{shown('kpis.yaml')}: kpis[{index}].windows: {format_duration(window)} "
                    f"is not a rolling window of {shown('socialpulse.yaml')} "
                    f"(windows.rolling: [{windows}]); use one of those or add it there"
                )
    _check_alert_references(alerts, pipeline, brands, kpis, shown("alerts.yaml"), shown)
    _check_campaign_metrics(pipeline, brands, kpis, shown("socialpulse.yaml"))
    return Settings(config_dir=folder, pipeline=pipeline, brands=brands, alerts=alerts, kpis=kpis)


def _check_campaign_metrics(
    pipeline: PipelineFile, brands: BrandsFile, kpis: KpisFile, file: str
) -> None:
    """metrics.campaigns must name configured brands, rolling windows and KPIs."""
    campaigns = pipeline.metrics.campaigns
    brand_ids = [b.id for b in brands.brands]
    for index, brand in enumerate(campaigns.brands):
        if brand not in brand_ids:
            raise ConfigError(
                f"{file}: metrics.campaigns.brands[{index}]: {brand!r} is not a brand of "
                f"brands.yaml (known: {', '.join(brand_ids)})"
            )
    rolling = pipeline.windows.rolling
    for index, window in enumerate(campaigns.windows):
        if window not in rolling:
            windows = ", ".join(format_duration(w) for w in rolling)
            raise ConfigError(
                f"{file}: metrics.campaigns.windows[{index}]: {format_duration(window)} is not "
                f"a rolling window (windows.rolling: [{windows}]); use one of those"
            )
    known = {*ALL_COUNTERS, *(k.name for k in kpis.kpis)}
    for index, name in enumerate(campaigns.kpis):
        if name not in known:
            raise ConfigError(
                f"{file}: metrics.campaigns.kpis[{index}]: {name!r} is not a counter or a "
                "KPI of kpis.yaml"
            )


def _check_alert_references(
    alerts: AlertsFile,
    pipeline: PipelineFile,
    brands: BrandsFile,
    kpis: KpisFile,
    file: str,
    shown: Callable[[str], str],
) -> None:
    """Rules and targets must name configured windows, KPIs and brands."""
    known = {*ALL_COUNTERS, *(k.name for k in kpis.kpis)}
    brand_ids = {b.id for b in brands.brands}
    rolling = pipeline.windows.rolling
    windows = ", ".join(format_duration(w) for w in rolling)

    def fail(where: str, what: str) -> None:
        raise ConfigError(f"{file}: {where}: {what}")

    for index, rule in enumerate(alerts.rules):
        where = f"rules[{index}] ({rule.name})"
        if rule.window not in rolling:
            fail(
                f"{where}.window",
                f"{format_duration(rule.window)} is not a rolling window of "
                f"{shown('socialpulse.yaml')} (windows.rolling: [{windows}]); use one of those "
                "or add it there",
            )
        for key in ("kpi", "volume_kpi", "share_kpi"):
            name = getattr(rule, key)
            if name not in known:
                fail(
                    f"{where}.{key}",
                    f"{name!r} is neither a counter nor a KPI of {shown('kpis.yaml')}",
                )
        for brand in rule.brands or ():
            if brand not in brand_ids:
                fail(f"{where}.brands", f"{brand!r} is not a brand of {shown('brands.yaml')}")
    for name in alerts.benchmarks:
        if name not in known:
            fail(f"benchmarks.{name}", "not a counter or KPI; benchmarks are keyed by KPI name")
    for index, target in enumerate(alerts.targets):
        where = f"targets[{index}] ({target.name})"
        if target.brand not in brand_ids:
            fail(f"{where}.brand", f"{target.brand!r} is not a brand of {shown('brands.yaml')}")
        if target.kpi not in known:
            fail(f"{where}.kpi", f"{target.kpi!r} is neither a counter nor a KPI")
        if target.window not in rolling:
            fail(f"{where}.window", f"{format_duration(target.window)} is not a rolling window")
    for index, route in enumerate(alerts.incidents.routes):
        for brand in route.brands or ():
            if brand not in brand_ids:
                fail(
                    f"incidents.routes[{index}].brands",
                    f"{brand!r} is not a brand of {shown('brands.yaml')}",
                )


class RulesFile(Strict):
    """A rules file for ``socialpulse backtest --rules`` (same keys as alerts.yaml's)."""

    rules: list[Rule] = Field(min_length=1)
    baselines: BaselineSettings | None = None
    evaluation: EvaluationSettings | None = None
    slack: dict[str, Any] | None = None  # an alerts.yaml may be given as is
    benchmarks: dict[str, float] | None = None
    targets: list[Any] | None = None
    incidents: dict[str, Any] | None = None


def load_rules_file(path: Path, settings: Settings) -> tuple[list[Rule], BaselineSettings]:
    """Rules (and baseline settings, default: the configured ones) from a YAML file."""
    rules_file = validate_model(RulesFile, read_yaml(path, str(path)), str(path))
    alerts = settings.alerts.model_copy(update={"rules": rules_file.rules})
    _check_alert_references(
        alerts,
        settings.pipeline,
        settings.brands,
        settings.kpis,
        str(path),
        lambda name: str(settings.config_dir / name),
    )
    return rules_file.rules, rules_file.baselines or settings.alerts.baselines
