"""Firings replayed through the incident lifecycle, offline (pure): which firings open an
incident (a notification) and which join one. ``socialpulse backtest`` reports both, and the
notification budget counts the incidents."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alerts.detection.backtest import iso
from alerts.detection.budget import BudgetSettings
from alerts.detection.calibration import WEEK
from alerts.detection.rule_check import AlertEvent
from alerts.incidents.lifecycle import (
    Incident,
    advance_time,
    incident_key,
    on_alert,
    open_incident,
)
from alerts.incidents.oncall import IncidentSettings


def replay(
    events: Iterable[AlertEvent],
    policy: IncidentSettings,
    default_channel: str,
    end: float | None = None,
) -> list[Incident]:
    """The incidents the firings and clearings open, in opening order, with the firings that
    joined each and whether they resolved by ``end`` (default: the last event; nobody
    acknowledges: time and clearings only)."""
    opened: list[Incident] = []
    open_now: dict[tuple[str, str], Incident] = {}
    for event in sorted(events, key=lambda e: e.at):
        if event.confirms:
            continue  # the firing it confirms is in the events already
        for waiting in list(open_now.values()):
            _advance(waiting, event.at, policy)
        open_now = {k: i for k, i in open_now.items() if i.open}
        channel = policy.channel_for(event.brand, event.severity, default_channel)
        if event.event == "cleared":
            # A clearing belongs to the incident its rule fired in.
            fired_in = next(
                (
                    i
                    for (brand, _), i in open_now.items()
                    if brand == event.brand
                    and i.platform == event.platform
                    and event.rule in i.firing_rules
                ),
                None,
            )
            if fired_in is not None:
                on_alert(fired_in, event, event.at, policy)
            continue
        joined = open_now.get((event.brand, incident_key(event.platform, channel)))
        if joined is None:
            incident, _ = open_incident(
                f"{event.brand}-{len(opened) + 1}", event, channel, event.at, {}
            )
            opened.append(incident)
            open_now[(event.brand, incident.key)] = incident
        else:
            on_alert(joined, event, event.at, policy)
    for incident in open_now.values():
        if end is not None:
            _advance(incident, end, policy)
    return opened


def _advance(incident: Incident, now: float, policy: IncidentSettings) -> None:
    # The live round runs every second; offline, an incident clear long enough resolves at
    # the moment it would have, not at the next event.
    cleared = incident.rule_cleared_at
    due = cleared + policy.auto_resolve_after if cleared is not None else now
    advance_time(incident, min(now, due), policy)


def notification_dict(incident: Incident) -> dict[str, Any]:
    """One notification (an incident opened) as a JSON-ready line: when and why it went out,
    the rules whose firings joined it, and when it resolved."""
    return {
        "fired_at": iso(incident.opened_at),
        "rule": incident.rule,
        "severity": incident.severity,
        "brand": incident.brand,
        "platform": incident.platform,
        "channel": incident.channel,
        "rules": incident.rules,
        "firings": incident.firings,
        "resolved_at": iso(incident.resolved_at) if incident.resolved_at is not None else None,
    }


def budget_summary(
    incidents: Sequence[Incident], budget: BudgetSettings, start: float, end: float
) -> str:
    """Notifications a week per brand and platform, against the budget of their severity."""
    weeks = max(end - start, 1.0) / WEEK
    series = sorted({(i.brand, i.platform) for i in incidents})
    lines = [f"{len(incidents)} notifications in {weeks:.1f} weeks"]
    for brand, platform in series:
        mine = [i for i in incidents if (i.brand, i.platform) == (brand, platform)]
        parts = []
        for severity in ("critical", "warning", "info"):
            n = sum(1 for i in mine if i.severity == severity)
            if n:
                allowed = budget.severity_budget(brand, platform, severity)
                parts.append(f"{severity} {n / weeks:.2f} a week (budget {allowed:g})")
        lines.append(f"  {brand}/{platform}: {', '.join(parts)}")
    return "\n".join(lines)
