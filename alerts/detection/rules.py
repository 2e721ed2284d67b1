"""Alert rules as configured in ``alerts.yaml: rules`` (validated models, no I/O).

Every rule watches one KPI over one rolling window per brand and platform, and fires when its
condition holds for ``for``; it clears, with hysteresis, when the clear-condition holds for
``clear_for``, and may not fire again within ``cooldown``. See docs/detection.md.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

from pydantic import Field, model_validator

from alerts.detection.baseline import BaselineParams, Method, Transform
from socialpulse.core.config_types import Duration, Strict

Kind = Literal[
    "threshold", "percent_change", "deviation", "negative_spike", "rate_of_change", "absence"
]
Direction = Literal["up", "down", "both"]
Severity = Literal["info", "warning", "critical"]
# Rule kinds that compare against a learned baseline (and wait for it to warm up).
BASELINE_KINDS = frozenset({"percent_change", "deviation", "negative_spike", "absence"})


class Rule(Strict):
    """One alert rule."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    kind: Kind
    kpi: str = "mentions"
    window: Duration = 300
    direction: Direction = "up"
    severity: Severity = "warning"
    # The rule is only evaluated when this KPI (default: mentions) is at least min_volume in the
    # window: for "up" now, for "down"/"absence" in the baseline (a drop from 2 to 0 is noise).
    volume_kpi: str = "mentions"
    min_volume: float = Field(0, ge=0)
    hold: Duration | None = Field(None, alias="for")  # condition must hold this long; None: 0
    clear_for: Duration | None = None
    cooldown: Duration | None = None
    brands: list[str] | None = None  # default: every brand
    # "each": every platform of the brand, separately; "all": all platforms together.
    platforms: Literal["each", "all"] | list[str] = "each"
    # threshold
    value: float | None = None
    clear_value: float | None = None
    # percent_change, rate_of_change: percent (50 = +50%); rate_of_change: against `over` ago
    percent: float | None = Field(None, gt=0)
    clear_percent: float | None = Field(None, ge=0)
    over: Duration | None = None
    # deviation and negative_spike: spreads from the baseline. Without z the level is calibrated
    # to the notification budget (alerts.detection.budget); with it, z is a hand-set level.
    z: float | None = Field(None, gt=0)
    clear_z: float | None = None
    # calibrated rules: this rule's notifications a week, instead of a share of its severity's
    budget: float | None = Field(None, gt=0)
    # negative_spike: the negative share must also exceed its baseline by this much (0.1 = 10 pts)
    min_share_rise: float = Field(0.0, ge=0, le=1)
    share_kpi: str = "negative_share"

    model_config = Strict.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _negative_spike_kpi(cls, data: Any) -> Any:
        # The spike rule is about negative mentions unless told otherwise.
        if isinstance(data, dict) and data.get("kind") == "negative_spike":
            return {"kpi": "mentions_negative", **data}
        return data

    @model_validator(mode="after")
    def _parameters_of_kind(self) -> Rule:
        needs = {
            "threshold": ("value",),
            "percent_change": ("percent",),
            "rate_of_change": ("percent", "over"),
            "deviation": (),
            "negative_spike": (),
            "absence": (),
        }[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} rule needs {' and '.join(missing)}")
        if self.kind == "absence" and self.hold is None:
            raise ValueError("an absence rule needs `for` (how long a feed may be silent)")
        if self.budget is not None and not self.calibrated:
            raise ValueError(
                "budget applies to deviation and negative_spike rules without z (their level "
                "is calibrated to it); remove budget or z"
            )
        if self.clear_z is not None and self.z is not None and self.clear_z > self.z:
            raise ValueError(f"clear_z ({self.clear_z}) must not exceed z ({self.z})")
        if self.clear_value is not None and self.value is not None:
            wrong = (
                self.clear_value > self.value
                if self.direction == "up"
                else self.clear_value < self.value
            )
            if wrong and self.direction != "both":
                raise ValueError(
                    f"clear_value ({self.clear_value}) must be on the quiet side of value "
                    f"({self.value}) for direction {self.direction}"
                )
        return self

    @property
    def hold_seconds(self) -> int:
        """How long the condition must hold before firing."""
        return self.hold or 0

    @property
    def calibrated(self) -> bool:
        """Whether the rule's level is calibrated to the notification budget (no hand-set z)."""
        return self.kind in ("deviation", "negative_spike") and self.z is None

    @property
    def uses_baseline(self) -> bool:
        """Whether the rule compares against a learned baseline."""
        return self.kind in BASELINE_KINDS

    def trigger_clear(self, calibrated: tuple[float, float] | None = None) -> tuple[float, float]:
        """(trigger, clear) magnitudes in the kind's units, with default hysteresis.
        ``calibrated``: a calibrated rule's (level, where a surge ends) now; without it such a
        rule never triggers."""
        if self.kind == "threshold":
            assert self.value is not None
            if self.clear_value is not None:
                return self.value, self.clear_value
            step = abs(self.value) * 0.2
            return self.value, self.value - step if self.direction != "down" else self.value + step
        if self.kind in ("percent_change", "rate_of_change"):
            assert self.percent is not None
            clear = self.clear_percent if self.clear_percent is not None else self.percent / 2
            return self.percent, clear
        if self.kind in ("deviation", "negative_spike"):
            if self.z is not None:
                return self.z, self.clear_z if self.clear_z is not None else self.z / 2
            if calibrated is None:
                return math.inf, math.inf
            level, surge_end = calibrated
            return level, min(self.clear_z if self.clear_z is not None else surge_end, level)
        return 0.0, 0.0


class BaselineSettings(Strict):
    """``alerts.yaml: baselines``: how baselines learn (see alerts.detection.baseline)."""

    method: Method = "seasonal"
    update_every: Duration = 300
    level_half_life: Duration = 86400
    hour_half_life: Duration = 3 * 86400
    day_half_life: Duration = 21 * 86400
    spread_half_life: Duration = 86400
    clip: float = Field(3.0, gt=0)
    warmup: Duration = 86400
    rolling_samples: int = Field(288, ge=3)

    def params(self, transform: Transform) -> BaselineParams:
        """Parameters for a series on this scale (ratios get a small spread floor)."""
        return BaselineParams(
            method=self.method,
            transform=transform,
            update_every=self.update_every,
            level_half_life=self.level_half_life,
            hour_half_life=self.hour_half_life,
            day_half_life=self.day_half_life,
            spread_half_life=self.spread_half_life,
            clip=self.clip,
            spread_floor=0.0 if transform == "sqrt" else 0.005,
            warmup=self.warmup,
            rolling_samples=self.rolling_samples,
        )


class EvaluationSettings(Strict):
    """``alerts.yaml: evaluation``: the tick grid rules are evaluated on."""

    every: Duration = 10  # ticks at multiples of this (unix time); a multiple of 10s
    settle: Duration = 2  # wait after a tick for its events to arrive
    max_catch_up: Duration = 600  # after a longer outage, skip to now (and say so)
    # A rising rule on counts that only grow fires as soon as the window ending at the next
    # tick holds its level, before that tick's last bucket is complete (same tick, same
    # firing; alerts.detection.engine.Detector.early).
    early: bool = True


class Target(Strict):
    """A SMART target: reach ``value`` of a KPI by ``deadline``, from ``start``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    brand: str
    kpi: str
    window: Duration = 86400
    platform: str = "all"
    value: float
    start: date  # e.g. 2026-10-01; progress is measured from here
    deadline: date
    start_value: float | None = None  # default: the KPI's value when first measured

    @model_validator(mode="after")
    def _deadline_after_start(self) -> Target:
        if self.deadline <= self.start:
            raise ValueError(f"deadline {self.deadline} must come after start {self.start}")
        return self


def transform_for(kpi: str, unit: str | None) -> Transform:
    """Counts are learned on the square-root scale, everything else as is."""
    return "sqrt" if unit in (None, "count") else "none"


__all__ = [
    "BASELINE_KINDS",
    "BaselineSettings",
    "Direction",
    "EvaluationSettings",
    "Kind",
    "Rule",
    "Severity",
    "Target",
    "transform_for",
]
