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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.config import AlertConfig, AlertsFile, RulesFile
from alerts.detection.config import DetectionSettings
from socialpulse.core.config import (
    BrandsFile,
    ConfigError,
)
from socialpulse.core.config_files import default_config_dir, read_yaml, shown_path, validate_model
from socialpulse.core.config_types import format_duration
from streams.config import KpisFile, PipelineFile
from streams.counters import ALL_COUNTERS


class Settings(AlertConfig):
    """The whole validated configuration, as the worker, CLI and stack use it: what every
    component takes (socialpulse.core.config, streams.config.StreamConfig,
    alerts.config.AlertConfig), and the folder it was read from."""

    config_dir: Path


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


def _apply_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in environ:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                continue  # the validator reports the malformed section itself
            data[section][key] = environ[var]


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
    # Brand lists of budget overrides and incident routes name configured brands.
    listed = [
        *(
            (f"budget.overrides[{i}].brands", o.brands)
            for i, o in enumerate(alerts.budget.overrides)
        ),
        *(
            (f"incidents.routes[{i}].brands", r.brands)
            for i, r in enumerate(alerts.incidents.routes)
        ),
    ]
    for where, names in listed:
        for brand in names or ():
            if brand not in brand_ids:
                fail(where, f"{brand!r} is not a brand of {shown('brands.yaml')}")
    _check_recurring_silences(alerts, brands, fail)


def _check_recurring_silences(
    alerts: AlertsFile, brands: BrandsFile, fail: Callable[[str, str], None]
) -> None:
    """A recurring silence names configured brands, their platforms and the rules."""
    rule_names = {rule.name for rule in alerts.rules}
    platforms = {p for b in brands.brands for p in b.platforms} | {"all"}
    for index, silence in enumerate(alerts.silences.recurring):
        where = f"silences.recurring[{index}] ({silence.name})"
        for brand in silence.brands:
            if brand not in {b.id for b in brands.brands}:
                fail(f"{where}.brands", f"{brand!r} is not a brand of brands.yaml")
        for platform in silence.platforms:
            if platform not in platforms:
                fail(f"{where}.platforms", f"{platform!r} is no configured brand's platform")
        for rule in silence.rules:
            if rule not in rule_names:
                fail(f"{where}.rules", f"{rule!r} is not a rule of this file")
        for severity in silence.severities:
            if severity not in ("info", "warning", "critical"):
                fail(f"{where}.severities", f"{severity!r} is not info, warning or critical")


def load_rules_file(path: Path, settings: Settings) -> DetectionSettings:
    """The configured detection sections with a YAML file's rules (and its baselines and
    budget, when it has them)."""
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
    return DetectionSettings(
        evaluation=settings.alerts.evaluation,
        baselines=rules_file.baselines or settings.alerts.baselines,
        budget=rules_file.budget or settings.alerts.budget,
        rules=rules_file.rules,
        benchmarks=settings.alerts.benchmarks,
        targets=settings.alerts.targets,
    )
