"""The detector the configuration asks for: its rules, how its baselines learn, its KPIs'
units. The live tick (alerts.pipeline) and the detection metrics build the same one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alerts.detection.engine import Detector
from alerts.detection.rules import BaselineSettings, Rule
from streams.config import KpiSpec


def detector_for(
    rules: Sequence[Rule], baselines: BaselineSettings, kpis: Iterable[KpiSpec]
) -> Detector:
    """The detector of these rules, baselines learning so, on these KPIs (their units)."""
    return Detector(rules, baselines, {kpi.name: kpi.unit for kpi in kpis})
