"""What each Grafana board shows: panels, their PromQL, units, thresholds and descriptions, one
module per board (socialpulse.app.boards.<board>), built on socialpulse.app.boards.model.

The boards in grafana/dashboards/ are generated from these specs (``socialpulse boards build``),
so a KPI's description carries the formula of config/kpis.yaml, and a test checks the committed
JSON is what the specs give.
"""

from __future__ import annotations

from socialpulse.app.boards.brand_overview import brand_overview
from socialpulse.app.boards.conversion_and_roi import conversion_and_roi
from socialpulse.app.boards.customer_care import customer_care
from socialpulse.app.boards.engagement_and_content import engagement_and_content
from socialpulse.app.boards.long_view import long_view
from socialpulse.app.boards.model import Board, Catalog, Panel, Query
from socialpulse.app.boards.pipeline_health import pipeline_health
from socialpulse.app.boards.sentiment_and_crisis import sentiment_and_crisis
from socialpulse.app.boards.targets import targets
from socialpulse.app.settings import Settings
from socialpulse.core.config_types import parse_duration

__all__ = ["Board", "Panel", "Query", "boards", "gauges_read"]


def boards(settings: Settings) -> list[Board]:
    """Every board, in the order the README lists them."""
    return _built(Catalog(settings))


def gauges_read(settings: Settings) -> frozenset[tuple[str, int]]:
    """(KPI or counter, window in seconds) of every window gauge a board reads: what the
    running totals cannot give, and the KPIs the alert rules judge where a panel shows them
    against the rule (what a worker with ``metrics.gauges: boards`` exports)."""
    kpi = Catalog(settings)
    _built(kpi)
    return frozenset((name, parse_duration(window)) for name, window in kpi.gauges_read)


def _built(kpi: Catalog) -> list[Board]:
    return [
        brand_overview(kpi),
        sentiment_and_crisis(kpi),
        engagement_and_content(kpi),
        conversion_and_roi(kpi),
        customer_care(kpi),
        pipeline_health(),
        targets(),
        long_view(kpi),
    ]
