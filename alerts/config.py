"""The alert stages' configuration: ``alerts.yaml`` (the Slack channel, rules, baselines, the
evaluation grid, incidents and on-call, benchmarks and targets) and a rules file for backtests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pydantic import (
    Field,
)

from alerts.detection.budget import BudgetSettings
from alerts.detection.config import DetectionConfig, DetectionSettings
from alerts.detection.rules import BaselineSettings, EvaluationSettings, Rule
from alerts.incidents.oncall import IncidentSettings
from alerts.silences.config import SilenceSettings
from socialpulse.core.config_types import Strict


class SlackSettings(Strict):
    """``slack``: the default channel, and the local stub used without a token."""

    channel: str = Field(min_length=1)
    # Used only when SLACK_BOT_TOKEN is unset: the project's local Slack Web API stub.
    stub_url: str = "http://127.0.0.1:9310/api/"

    @property
    def stub_port(self) -> int:
        """TCP port of the local Slack stub."""
        return urlparse(self.stub_url).port or 80


class AlertsFile(DetectionSettings):
    """config/alerts.yaml: the detection sections, the Slack channel and the incidents'
    on-call policy."""

    slack: SlackSettings
    incidents: IncidentSettings = IncidentSettings()
    silences: SilenceSettings = SilenceSettings()


class RulesFile(Strict):
    """A rules file for ``socialpulse backtest --rules`` (same keys as alerts.yaml's)."""

    rules: list[Rule] = Field(min_length=1)
    baselines: BaselineSettings | None = None
    budget: BudgetSettings | None = None
    evaluation: EvaluationSettings | None = None
    slack: dict[str, Any] | None = None  # an alerts.yaml may be given as is
    benchmarks: dict[str, float] | None = None
    targets: list[Any] | None = None
    incidents: dict[str, Any] | None = None
    silences: dict[str, Any] | None = None


class AlertConfig(DetectionConfig):
    """What the alert stages take: the stream stage's configuration and alerts.yaml."""

    alerts: AlertsFile
