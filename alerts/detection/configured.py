"""The detector the configuration asks for: its rules, how its baselines learn, the budget its
levels are calibrated to, its KPIs' units. The live tick (alerts.pipeline), the detection
metrics and ``socialpulse backtest`` build the same one."""

from __future__ import annotations

from collections.abc import Iterable

from alerts.detection.config import DetectionSettings
from alerts.detection.engine import Detector
from streams.config import KpiSpec


def detector_for(detection: DetectionSettings, kpis: Iterable[KpiSpec]) -> Detector:
    """The detector of alerts.yaml's detection sections, on these KPIs (their units)."""
    units = {kpi.name: kpi.unit for kpi in kpis}
    return Detector(detection.rules, detection.baselines, units, detection.budget)
