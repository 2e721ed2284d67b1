"""What the detection stage takes of the configuration: the stream stage's, and alerts.yaml's
detection sections (the tick grid, how baselines learn, the rules, benchmarks, targets)."""

from __future__ import annotations

from pydantic import Field, field_validator

from alerts.detection.budget import BudgetSettings
from alerts.detection.rules import BaselineSettings, EvaluationSettings, Rule, Target
from socialpulse.core.config_types import Strict, format_duration
from streams.config import StreamConfig
from streams.windows import TIERS


class DetectionSettings(Strict):
    """alerts.yaml's detection sections."""

    evaluation: EvaluationSettings = EvaluationSettings()
    baselines: BaselineSettings = BaselineSettings()
    budget: BudgetSettings = BudgetSettings()
    rules: list[Rule] = Field(default_factory=list)
    # Reference values per KPI (e.g. an industry engagement rate), shown beside the baselines.
    benchmarks: dict[str, float] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)

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


class DetectionConfig(StreamConfig):
    """The stream stage's configuration and the detection sections of alerts.yaml."""

    alerts: DetectionSettings
