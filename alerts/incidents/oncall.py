"""On-call policy from ``alerts.yaml: incidents`` (validated models and pure decisions, no I/O):
who may act on incidents, how unacknowledged ones escalate, where notifications go, and the
quiet hours that hold low-severity ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from alerts.detection.rules import Severity
from socialpulse.core.config_types import WEEKDAYS, Duration, Strict, TimeZone, Weekday


class EscalationStep(Strict):
    """Re-notify an unacknowledged incident ``after`` its opening, mentioning ``notify``."""

    after: Duration
    # Slack mention syntax: <@U123> (a person), <!subteam^S123> (a user group), or plain text.
    notify: str = Field(min_length=1)


class Route(Strict):
    """Send incidents of these brands and severities (default: any) to ``channel``."""

    channel: str = Field(min_length=1)
    brands: list[str] | None = None
    severities: list[Severity] | None = None


class QuietHours(Strict):
    """Hold notifications of ``hold`` severities between ``start`` and ``end`` (local time in
    ``timezone``); critical ones are never held."""

    start: time
    end: time
    timezone: TimeZone = "UTC"
    hold: list[Severity] = Field(default_factory=lambda: list[Severity](["info", "warning"]))

    @field_validator("hold")
    @classmethod
    def _never_critical(cls, value: list[Severity]) -> list[Severity]:
        if "critical" in value:
            raise ValueError("critical notifications are never held; remove 'critical'")
        return value

    def release(self, now: float) -> float | None:
        """When notifications held now may go out (unix time), or None outside quiet hours."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, UTC).astimezone(zone)
        today_end = datetime.combine(local.date(), self.end, zone)
        if self.start <= self.end:  # e.g. 12:00-14:00
            inside = self.start <= local.time() < self.end
            return today_end.timestamp() if inside else None
        # Over midnight, e.g. 22:00-07:00.
        if local.time() >= self.start:
            return (today_end + timedelta(days=1)).timestamp()
        if local.time() < self.end:
            return today_end.timestamp()
        return None


class Interactivity(Strict):
    """The Slack interactivity endpoint (buttons); loopback only unless configured otherwise."""

    host: str = "127.0.0.1"
    port: int = Field(9311, ge=0, le=65535)  # 0: no endpoint in this worker
    path: str = "/slack/interactivity"
    # Where Slack sends /socialpulse (the slash command's Request URL): silences.
    commands_path: str = "/slack/commands"
    max_body: int = Field(64 * 1024, gt=0)  # bytes; a longer Content-Length gets 413 unread
    # Seconds from a connection's opening to its whole request (head and body); a slower one
    # gets 408, so a client that trickles or goes quiet cannot hold a connection for long.
    request_timeout: Duration = 10
    # Open connections at once; the next one gets 503 with Retry-After before anything is read.
    max_connections: int = 64

    @field_validator("request_timeout")
    @classmethod
    def _timeout_within_reason(cls, value: int) -> int:
        # Slack waits 3 s for an answer, so a longer wait only gives a slow client more time.
        if value > 60:
            raise ValueError(f"{value} s is too long for a request to arrive; use 1s to 60s")
        return value

    @field_validator("max_connections")
    @classmethod
    def _connections_within_reason(cls, value: int) -> int:
        # Each open connection is a file descriptor of the worker, which Kafka and Redis need too.
        if not 1 <= value <= 4096:
            raise ValueError(f"{value} open connections: use 1 to 4096 (e.g. 64)")
        return value


class WeeklySummary(Strict):
    """``incidents.weekly_summary``: when each brand's channel gets its week (the 7 days up to
    ``day`` at ``at``, local time in ``timezone``), and the useful share below which a rule
    is named in it."""

    day: Weekday = "mon"
    at: time = time(9, 0)
    timezone: TimeZone = "UTC"
    # A rule whose incidents of the last 30 days were judged useful less often than this
    # (0 to 1) is named, once it has `min_verdicts` verdicts (fewer say little).
    useful_floor: float = Field(0.5, ge=0, le=1)
    min_verdicts: int = Field(3, ge=1)

    def last_due(self, now: float) -> float:
        """The latest summary time at or before ``now`` (unix seconds)."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, UTC).astimezone(zone)
        back = (local.weekday() - WEEKDAYS.index(self.day)) % 7
        moment = datetime.combine(local.date() - timedelta(days=back), self.at, zone)
        if moment.timestamp() > now:
            moment = datetime.combine(moment.date() - timedelta(days=7), self.at, zone)
        return moment.timestamp()


class IncidentSettings(Strict):
    """``alerts.yaml: incidents``."""

    # Slack user ids allowed to acknowledge, snooze and resolve; empty: anyone in the channel.
    responders: list[str] = Field(default_factory=list)
    escalation: list[EscalationStep] = Field(default_factory=list)
    remind_every: Duration | None = None  # while acknowledged and unresolved
    auto_resolve_after: Duration = 600  # the rule clear this long resolves the incident
    snooze_options: list[Duration] = Field(default_factory=lambda: [1800, 7200])
    routes: list[Route] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    grafana_url: str = "http://localhost:3000"
    interactivity: Interactivity = Interactivity()
    weekly_summary: WeeklySummary | None = WeeklySummary()  # null: none posted

    @field_validator("escalation")
    @classmethod
    def _increasing(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        delays = [step.after for step in value]
        if delays != sorted(set(delays)):
            raise ValueError("escalation steps must come in order of increasing `after`")
        return value

    @field_validator("snooze_options")
    @classmethod
    def _some_snooze(cls, value: list[int]) -> list[int]:
        if not value or len(value) > 4:
            raise ValueError("give 1 to 4 snooze durations (buttons), e.g. [30m, 2h]")
        return value

    def channel_for(self, brand: str, severity: str, default: str) -> str:
        """The first route matching the brand and severity, else ``default``."""
        for route in self.routes:
            if (route.brands is None or brand in route.brands) and (
                route.severities is None or severity in route.severities
            ):
                return route.channel
        return default

    def held_until(self, severity: str, now: float) -> float | None:
        """When a notification of this severity may go out, if quiet hours hold it now."""
        quiet = self.quiet_hours
        if quiet is None or severity not in quiet.hold:
            return None
        return quiet.release(now)

    def may_act(self, user: str) -> bool:
        """Whether a Slack user may acknowledge, snooze or resolve incidents."""
        return not self.responders or user in self.responders


__all__ = [
    "EscalationStep",
    "IncidentSettings",
    "Interactivity",
    "QuietHours",
    "Route",
    "WeeklySummary",
]
