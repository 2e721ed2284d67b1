"""``alerts.yaml: budget``: how many notifications a week a brand and platform may cost, per
severity, and what each calibrated rule's share of it is (validated models, no I/O).

A rule is calibrated when it compares with a learned baseline and sets no hand-set level
(``deviation`` and ``negative_spike`` rules without ``z``). Its level is whatever its series'
own surges reach ``share`` times a week (alerts.detection.calibration). A rule's own ``budget``
is its share; the rest of the severity's budget is split evenly among the severity's other
calibrated rules on the brand and platform.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, PositiveFloat

from alerts.detection.calibration import WEEK, CalibrationParams
from alerts.detection.rules import Rule, Severity
from socialpulse.core.config_types import Duration, Strict

DEFAULT_PER_WEEK: dict[Severity, float] = {"critical": 1.0, "warning": 1.0, "info": 1.0}


class BudgetOverride(Strict):
    """A different budget for some brands, platforms or severities (first match wins)."""

    brands: list[str] | None = None  # default: every brand
    platforms: list[str] | None = None  # default: every platform ("all" included)
    severities: list[Severity] | None = None
    per_week: float = Field(gt=0)


class BudgetSettings(Strict):
    """Notifications a week per brand and platform, and how levels are calibrated to it."""

    per_week: dict[Severity, PositiveFloat] = Field(default_factory=lambda: dict(DEFAULT_PER_WEEK))
    overrides: list[BudgetOverride] = Field(default_factory=list)
    # Never page below this many spreads from the baseline, however quiet the series: the
    # budget is a ceiling, and a quiet brand is not paged for noise to use it up.
    min_z: float = Field(5.0, gt=0)
    # Until a series has been watched `learn` long, its calibrated rules fire at start_z.
    start_z: float = Field(8.0, gt=0)
    learn: Duration = 3 * 86400
    # A surge starts above `threshold` spreads and ends after `gap` below; one surge, one peak.
    threshold: float = Field(2.0, gt=0)
    gap: Duration = 3 * 3600
    horizon: Duration = 8 * 7 * 86400  # surges are remembered this long

    def params(self, step: int = 300) -> CalibrationParams:
        """The calibration parameters these settings say, for scores ``step`` seconds apart
        (a pause of a few steps is a gap, not observed time)."""
        return CalibrationParams(
            threshold=self.threshold,
            gap=float(self.gap),
            horizon=float(max(self.horizon, WEEK)),
            min_observed=float(self.learn),
            max_step=float(max(900, 2 * step)),
        )

    def severity_budget(self, brand: str, platform: str, severity: str) -> float:
        """Notifications a week the brand and platform may cost at this severity."""
        for o in self.overrides:
            if (
                (o.brands is None or brand in o.brands)
                and (o.platforms is None or platform in o.platforms)
                and (o.severities is None or severity in o.severities)
            ):
                return o.per_week
        return self.per_week.get(severity, 1.0)  # type: ignore[call-overload]

    def share(self, rule: Rule, rules: Sequence[Rule], brand: str, platform: str) -> float:
        """The notifications a week the calibrated ``rule`` may cost on the brand and platform,
        among the calibrated ``rules`` that apply there."""
        if rule.budget is not None:
            return rule.budget
        peers = [r for r in rules if r.calibrated and r.severity == rule.severity]
        taken = sum(r.budget for r in peers if r.budget is not None)
        open_ = [r for r in peers if r.budget is None]
        total = self.severity_budget(brand, platform, rule.severity)
        # Rules' own budgets may use up their severity's: the others keep a tenth of it.
        rest = max(total - taken, total / 10)
        return rest / max(len(open_), 1)
