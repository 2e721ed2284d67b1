"""Firings replayed through the incident lifecycle offline: one surge, one notification."""

from __future__ import annotations

from alerts.detection.rule_check import AlertEvent
from alerts.incidents.oncall import IncidentSettings
from alerts.incidents.replay import replay

POLICY = IncidentSettings.model_validate(
    {
        "auto_resolve_after": "10m",
        "routes": [{"brands": ["acme"], "severities": ["critical"], "channel": "#acme-crisis"}],
    }
)


def event(kind: str, rule: str, severity: str, at: float, platform: str = "x") -> AlertEvent:
    return AlertEvent(
        kind,
        rule,
        "deviation",
        severity,
        "acme",
        platform,
        "mentions",
        900,
        at,
        1,
        1,
        1,
        at,  # type: ignore[arg-type]
    )


def test_firings_of_one_surge_are_one_notification_and_a_later_surge_another() -> None:
    incidents = replay(
        [
            event("fired", "surge", "warning", 1000),
            event("fired", "drop", "info", 1300),  # joins: same brand, platform and channel
            event("fired", "surge", "warning", 1100, platform="tiktok"),  # another platform
            event("fired", "spike", "critical", 1200),  # another channel (#acme-crisis)
            event("cleared", "surge", "warning", 2000),
            event("cleared", "drop", "info", 2500),  # the last rule of the surge: 10m to go
            event("fired", "surge", "warning", 2500 + 599),  # still open: joins
            event("cleared", "surge", "warning", 4000),
            event("fired", "surge", "warning", 4000 + 601),  # resolved at 4600: a new one
        ],
        POLICY,
        "#social-crisis",
        end=10_000,
    )
    assert [(i.opened_at, i.platform, i.channel, i.rules, i.firings) for i in incidents] == [
        (1000, "x", "#social-crisis", ["surge", "drop"], 3),
        (1100, "tiktok", "#social-crisis", ["surge"], 1),
        (1200, "x", "#acme-crisis", ["spike"], 1),
        (4601, "x", "#social-crisis", ["surge"], 1),
    ]
    # Nothing cleared the others: they are still open at the end.
    assert [i.resolved_at for i in incidents] == [4600, None, None, None]
