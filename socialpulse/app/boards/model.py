"""The building blocks of the Grafana boards: panels, queries, annotations and the KPI catalog
they draw their names and descriptions from.

Aggregation keeps the numbers right with 1 or N workers: a brand-level gauge is exported alike
by every worker, so it is ``max``-ed across them (per platform, then summed over platforms);
pipeline counters are per worker, so they are summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from socialpulse.app.boards.from_totals import (
    ANY_TOTAL,
    Term,
    counted,
    derivable,
    formula,
)
from socialpulse.app.settings import Settings
from socialpulse.core.config_types import parse_duration
from streams.config import FORMULA_NAMES, KpiSpec
from streams.formulas import compile_formula

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


Steps = list[tuple[float | None, str]]  # (from value, colour); the first starts at None


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One Grafana panel."""

    title: str
    description: str
    queries: list[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat, bargauge
    width: int = 12
    height: int = 8
    steps: Steps = field(default_factory=lambda: [(None, GREEN)])
    min: float | None = None
    max: float | None = None
    preview: bool = False  # drawn in the README's PNG preview of the board


@dataclass(frozen=True)
class Annotation:
    """Marks on the time axis where a PromQL expression has a value."""

    name: str
    expr: str
    color: str
    text: str


@dataclass(frozen=True)
class Board:
    """One Grafana dashboard."""

    uid: str
    slug: str  # file name in grafana/dashboards/
    title: str
    description: str
    panels: list[Panel]
    variables: tuple[str, ...] = ("brand", "platform")
    annotations: list[Annotation] = field(default_factory=list)
    time_from: str = "now-30m"


BRAND = 'brand="$brand"'


def _sel(metric: str, window: str | None, platform: str = '=~"$platform"') -> str:
    labels = [BRAND, f"platform{platform}"]
    if window:
        labels.append(f'window="{window}"')
    return f"{metric}{{{', '.join(labels)}}}"


class Catalog:
    """The KPIs of config/kpis.yaml by name: metric names, descriptions with formulas, and the
    queries of a window's value: from the running totals where they give it
    (socialpulse.app.boards.from_totals), else from the window gauges."""

    def __init__(self, settings: Settings):
        self.specs: dict[str, KpiSpec] = {k.name: k for k in settings.kpis.kpis}
        self.settings = settings
        # (KPI or counter, window) of every window gauge a query built here reads: what a
        # worker with metrics.gauges: boards exports.
        self.gauges_read: set[tuple[str, str]] = set()

    def gauge(self, name: str, window: str, platform: str = '=~"$platform"') -> str:
        """The selector of a KPI or counter's window gauge (the chosen platforms, or
        ``platform``), noted as read by the boards."""
        self.gauges_read.add((name, window))
        return _sel(self.metric(name), window, platform)

    def metric(self, name: str) -> str:
        """Prometheus name of a KPI or counter (its window gauge)."""
        spec = self.specs.get(name)
        return spec.metric_name if spec else f"socialpulse_{name}"

    def from_totals(self, name: str) -> bool:
        """Whether the KPI or counter's window is computed from the running totals."""
        spec = self.specs.get(name)
        if spec is None:
            return derivable({name})
        return derivable(compile_formula(spec.formula, FORMULA_NAMES).names)

    def total(self, name: str, window: str, gauge: bool = False) -> str:
        """A count over the chosen platforms in the window (0 when nothing was counted); from
        the window gauge with ``gauge`` (beside values that only a gauge has)."""
        if gauge or not self.from_totals(name):
            # Per platform the max over workers, then the sum.
            return f"sum(max by (platform) ({self.gauge(name, window)}))"
        chosen = f'{BRAND}, platform=~"$platform"'
        return self._value(name, window, lambda c: f"sum({counted(c, window, chosen)})")

    def by_platform(self, name: str, window: str) -> str:
        """A value per chosen platform in the window."""
        if not self.from_totals(name):
            return f"max by (platform) ({self.gauge(name, window)})"
        chosen = f'{BRAND}, platform=~"$platform"'
        # 0 on a platform where the brand counted anything (so a line at 0, not "no data").
        zero = f'(0 * group by (platform) ({{__name__=~"{ANY_TOTAL}", {chosen}}}))'
        spec = self.specs.get(name)
        if spec is None:
            return f"({counted(name, window, chosen)} or {zero})"
        seconds = parse_duration(window)
        return formula(spec.formula, seconds, lambda c: counted(c, window, chosen), zero)

    def overall(self, name: str, window: str) -> str:
        """A KPI over all platforms together in the window (a ratio of sums)."""
        if not self.from_totals(name):
            everywhere = '="all"'  # its platform="all" series
            return f"max({self.gauge(name, window, everywhere)})"
        return self._value(name, window, lambda c: f"sum({counted(c, window, BRAND)})")

    def _value(self, name: str, window: str, term: Term) -> str:
        spec = self.specs.get(name)
        if spec is None:
            return f"{term(name)} or vector(0)"
        return formula(spec.formula, parse_duration(window), term, "vector(0)")

    def about(self, *names: str) -> str:
        """'name = formula (help)' for each KPI named, for a panel description."""
        parts = []
        for name in names:
            spec = self.specs.get(name)
            if spec is None:
                parts.append(f"{name}: the {name.replace('_', ' ')} counted in the window.")
            else:
                parts.append(f"{name} = {spec.formula}. {spec.help}")
        return " ".join(parts)


def _ratio_stat(
    kpi: Catalog, name: str, window: str, title: str, steps: Steps, preview: bool = False
) -> Panel:
    return Panel(
        title,
        f"Over all platforms, rolling {window} window. {kpi.about(name)}",
        [Query(kpi.overall(name, window), name)],
        unit="percentunit",
        kind="stat",
        width=4,
        height=4,
        steps=steps,
        preview=preview,
    )


INCIDENT_ANNOTATIONS = [
    Annotation(
        "Alerts firing",
        'max by (rule, platform) (socialpulse_alert_rule_firing{brand="$brand"}) > 0',
        RED,
        "{{rule}} firing on {{platform}}",
    ),
    Annotation(
        "Incidents opened",
        'sum by (severity) (increase(socialpulse_incidents_opened_total{brand="$brand"}[1m])) > 0',
        ORANGE,
        "{{severity}} incident opened",
    ),
    Annotation(
        "Silenced firings",
        "sum by (rule) (increase(socialpulse_alert_silenced_firings_total"
        '{brand="$brand"}[1m])) > 0',
        BLUE,
        "{{rule}} fired under a silence (not notified)",
    ),
]
