"""The incident lifecycle (pure): firings open or join incidents, people act on them, time
escalates, reminds, ends snoozes and auto-resolves. Every change is a timeline entry and the
Slack notices it causes; alerts.incidents.round stores them and queues the notices.

States: triggered -> acknowledged -> resolved, and snoozed (from triggered or acknowledged,
back to it when the snooze ends). One surge, one page: a firing of any rule on a brand and
platform joins the open incident of that brand and platform in the same channel (a storm of
firings is one incident with a growing count, and the severity may rise within it); it resolves
once every rule that fired in it has stayed clear for ``auto_resolve_after``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from alerts.detection.alert_text import describe
from alerts.detection.rule_check import AlertEvent
from alerts.incidents.oncall import IncidentSettings
from alerts.slack_text import escape
from socialpulse.core.config_types import format_duration

State = Literal["triggered", "acknowledged", "snoozed", "silenced", "resolved"]
Action = Literal["ack", "snooze", "resolve"]
Verdict = Literal["useful", "not_useful"]
VERDICTS: tuple[Verdict, ...] = ("useful", "not_useful")
# Why an alert was no use, as the team says it (the Slack menu's options, the CLI's --reason).
VERDICT_REASONS = {
    "expected_event": "expected event",
    "bot_wave": "bot wave",
    "data_problem": "data problem",
    "too_sensitive": "too sensitive",
}
NoticeKind = Literal["post", "update", "reply", "ephemeral"]
SYSTEM = "socialpulse"
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def is_slack_user(who: str) -> bool:
    """Whether ``who`` is a Slack user id (the rest are CLI users and the system)."""
    return bool(_SLACK_ID.match(who))


def who_text(who: str) -> str:
    """Who, for Slack mrkdwn: a Slack user id as a mention, anyone else (a CLI user's
    ``--as`` name, the system) as written, escaped so that a name cannot mention anyone."""
    return f"<@{who}>" if is_slack_user(who) else escape(who)


def _note(why: str) -> str:
    """A reason (a person's ``--why``, free text, or the system's) ending a thread line,
    escaped."""
    return f": {escape(why)}" if why else ""


@dataclass(frozen=True)
class TimelineEntry:
    """One change of an incident: who did what, when, and why."""

    at: float
    who: str
    action: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class Notice:
    """What Slack must hear: the incident message (post, update), a line in its thread (reply,
    ``broadcast`` also to the channel) or a note only ``user`` sees (ephemeral)."""

    kind: NoticeKind
    text: str = ""
    broadcast: bool = False
    user: str | None = None


@dataclass
class Outcome:
    """The timeline entries and notices one change caused; ``refused`` says why nothing did."""

    timeline: list[TimelineEntry] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    refused: str | None = None

    def add(self, entry: TimelineEntry, *notices: Notice) -> None:
        """Record a change and its notices."""
        self.timeline.append(entry)
        self.notices.extend(notices)


@dataclass
class Incident:
    """One incident; serialisable with :meth:`to_dict` / :meth:`from_dict`."""

    id: str
    brand: str
    platform: str
    rule: str  # the rule that opened it
    kind: str
    severity: str
    kpi: str
    window: int
    channel: str
    opened_at: float
    since: float  # when the rule's condition began to hold
    value: float | None
    baseline: float | None
    score: float | None
    state: State = "triggered"
    firings: int = 1
    last_fired_at: float | None = None
    rule_cleared_at: float | None = None
    acked_by: str | None = None
    acked_at: float | None = None
    snoozed_until: float | None = None
    resumes: State | None = None  # the state a snooze returns to
    resolved_at: float | None = None
    resolved_by: str | None = None
    escalate_from: float = 0.0
    escalations: int = 0  # escalation steps notified
    next_reminder_at: float | None = None
    context: dict[str, Any] = field(default_factory=dict)  # what drove it, at opening
    rules: list[str] = field(default_factory=list)  # every rule that fired in it
    firing_rules: list[str] = field(default_factory=list)  # those not cleared since
    # When its message was first posted; None while a silence has kept it from notifying
    # (then it has no message to update or thread, and its notices are dropped).
    notified_at: float | None = None
    silenced_by: str | None = None  # the silence that holds (or held) it unnotified
    # A silence made after it notified that covers every rule still firing in it: its
    # escalations and reminders wait while it lasts (the incident round keeps this).
    muted_by: str | None = None
    verdict: Verdict | None = None  # the team's word: was it any use?
    verdict_reason: str | None = None  # a key of VERDICT_REASONS, for not_useful
    verdict_by: str | None = None
    verdict_at: float | None = None

    @property
    def key(self) -> str:
        """Incidents with the same key are one: ``<platform>|<channel>`` within a brand."""
        return incident_key(self.platform, self.channel)

    @property
    def open(self) -> bool:
        """Not resolved."""
        return self.state != "resolved"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        """An incident from :meth:`to_dict`'s output (also one stored before incidents were
        joined across rules: its rule is its only one, firing until it cleared)."""
        incident = cls(**data)
        if "notified_at" not in data:  # stored before silences: every incident notified
            incident.notified_at = incident.opened_at
        if "rules" not in data:
            incident.rules = [incident.rule]
            still = incident.open and incident.rule_cleared_at is None
            incident.firing_rules = [incident.rule] if still else []
        return incident


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def incident_key(platform: str, channel: str) -> str:
    """The key of the brand's open incident a firing on ``platform`` routed to ``channel``
    joins."""
    return f"{platform}|{channel}"


def open_incident(
    incident_id: str, event: AlertEvent, channel: str, now: float, context: dict[str, Any]
) -> tuple[Incident, Outcome]:
    """A new incident for a firing; its message is posted."""
    incident = Incident(
        id=incident_id,
        brand=event.brand,
        platform=event.platform,
        rule=event.rule,
        kind=event.kind,
        severity=event.severity,
        kpi=event.kpi,
        window=event.window,
        channel=channel,
        opened_at=now,
        since=event.since,
        value=event.value,
        baseline=event.baseline,
        score=event.score,
        last_fired_at=event.at,
        escalate_from=now,
        context=context,
        rules=[event.rule],
        firing_rules=[event.rule],
        notified_at=now,
    )
    outcome = Outcome()
    outcome.add(TimelineEntry(now, SYSTEM, "opened", describe(event)), Notice("post"))
    return incident, outcome


def open_silenced(
    incident_id: str,
    event: AlertEvent,
    channel: str,
    now: float,
    context: dict[str, Any],
    silence: str,
    silence_text: str,
) -> tuple[Incident, Outcome]:
    """A new incident for a firing a silence matches: recorded with its timeline, nobody told.
    ``silence``: the silence's id; ``silence_text``: who made it and why (for the timeline)."""
    incident, _ = open_incident(incident_id, event, channel, now, context)
    incident.state, incident.notified_at, incident.silenced_by = "silenced", None, silence
    outcome = Outcome()
    outcome.add(
        TimelineEntry(now, SYSTEM, f"fired, silenced by {silence}", describe(event)),
    )
    outcome.add(TimelineEntry(now, SYSTEM, "not notified", silence_text))
    return incident, outcome


def end_silence(incident: Incident, now: float, why: str) -> Outcome:
    """A silenced incident whose firing no silence covers any more (the silence ended or was
    expired while its condition still holds, or an unsilenced firing joined): it opens now,
    as if it had just fired, and its message is posted."""
    outcome = Outcome()
    if incident.state != "silenced":
        return outcome
    incident.state, incident.notified_at = "triggered", now
    incident.escalate_from, incident.escalations = now, 0
    outcome.add(TimelineEntry(now, SYSTEM, "opened", why), Notice("post"))
    return outcome


def on_alert(
    incident: Incident, event: AlertEvent, now: float, policy: IncidentSettings
) -> Outcome:
    """A firing joins the open incident; a clearing starts the auto-resolve wait."""
    outcome = Outcome()
    if event.confirms:  # the complete window's figures of a firing sent early: shown, no ping
        figures = (event.value, event.baseline, event.score)
        if figures != (incident.value, incident.baseline, incident.score):
            incident.value, incident.baseline, incident.score = figures
            outcome.notices.append(Notice("update"))
        return outcome
    if event.event == "fired":
        incident.firings += 1
        incident.value, incident.baseline, incident.score = event.value, event.baseline, event.score
        incident.last_fired_at, incident.rule_cleared_at = event.at, None
        joined = event.rule not in incident.rules
        incident.rules = [*incident.rules, event.rule] if joined else incident.rules
        if event.rule not in incident.firing_rules:
            incident.firing_rules = [*incident.firing_rules, event.rule]
        rose = SEVERITY_RANK.get(event.severity, 0) > SEVERITY_RANK.get(incident.severity, 0)
        if rose:
            incident.severity = event.severity
            if incident.state == "snoozed":
                # A snooze was for the lower severity: a worse firing ends it, and pings.
                incident.state = incident.resumes or "triggered"
                incident.snoozed_until = incident.resumes = None
                if incident.state == "triggered":
                    incident.escalate_from, incident.escalations = now, 0
        # describe() holds config names and numbers only; escaped all the same, as all mrkdwn.
        what = (
            "Severity rose to " + event.severity if rose else "Joined" if joined else "Fired again"
        )
        line = f"{what} (firing {incident.firings}): {escape(describe(event))}"
        quiet = incident.state == "snoozed"  # the message is refreshed, nobody is pinged
        notices = [Notice("update")] if quiet else [Notice("update"), Notice("reply", line)]
        action = "severity rose" if rose else "joined" if joined else "fired again"
        outcome.add(TimelineEntry(now, SYSTEM, action, describe(event)), *notices)
        return outcome
    incident.firing_rules = [r for r in incident.firing_rules if r != event.rule]
    if incident.firing_rules:
        return outcome  # other rules of the surge still fire: it goes on
    incident.rule_cleared_at = event.at
    incident.value = event.value
    wait = policy.auto_resolve_after
    line = f"The rule cleared: {escape(describe(event))}."
    if wait:
        line += f" Resolves by itself if it stays clear for {format_duration(wait)}."
    outcome.add(TimelineEntry(now, SYSTEM, "rule cleared", describe(event)), Notice("reply", line))
    if not wait:
        _resolve(incident, SYSTEM, now, "the rule cleared", outcome)
    return outcome


def act(
    incident: Incident,
    action: Action,
    who: str,
    now: float,
    why: str = "",
    snooze_for: int | None = None,
) -> Outcome:
    """A person acknowledges, snoozes or resolves; refused when it makes no sense now."""
    outcome = Outcome()
    by = who_text(who)
    if incident.state == "resolved":
        outcome.refused = f"incident {incident.id} is already resolved"
        return outcome
    if incident.state == "silenced" and action != "resolve":
        outcome.refused = (
            f"incident {incident.id} is silenced by {incident.silenced_by}: nobody was notified; "
            "expire the silence to open it, or resolve it"
        )
        return outcome
    if action == "ack":
        if incident.state == "acknowledged":
            outcome.refused = (
                f"incident {incident.id} is already acknowledged by "
                f"{who_text(incident.acked_by or '?')}"
            )
            return outcome
        incident.state, incident.acked_by, incident.acked_at = "acknowledged", who, now
        incident.snoozed_until = incident.resumes = None
        incident.next_reminder_at = None
        outcome.add(
            TimelineEntry(now, who, "acknowledged", why),
            Notice("update"),
            Notice("reply", f"Acknowledged by {by}{_note(why)}"),
        )
    elif action == "snooze":
        if not snooze_for or snooze_for <= 0:
            outcome.refused = "a snooze needs a duration, e.g. 30m"
            return outcome
        if incident.state != "snoozed":
            incident.resumes = incident.state
        incident.state, incident.snoozed_until = "snoozed", now + snooze_for
        shown = format_duration(snooze_for)
        outcome.add(
            TimelineEntry(now, who, f"snoozed for {shown}", why),
            Notice("update"),
            Notice(
                "reply",
                f"Snoozed for {shown} by {by}, until <!date^{int(now + snooze_for)}^{{time}}|"
                f"{int(now + snooze_for)}>{_note(why)}",
            ),
        )
    else:
        _resolve(incident, who, now, why, outcome)
    return outcome


def give_verdict(incident: Incident, verdict: str, reason: str, who: str, now: float) -> Outcome:
    """The team's word on an incident, open or resolved: useful or not (with an optional
    reason). The last one given stands; each is on the timeline."""
    outcome = Outcome()
    if verdict not in VERDICTS:
        outcome.refused = f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}"
        return outcome
    if reason and (verdict != "not_useful" or reason not in VERDICT_REASONS):
        outcome.refused = (
            f"reason {reason!r}: a not_useful verdict takes one of {', '.join(VERDICT_REASONS)}"
        )
        return outcome
    if (incident.verdict, incident.verdict_reason or "") == (verdict, reason):
        outcome.refused = (
            f"incident {incident.id} is already marked {verdict_text(verdict, reason)} by "
            f"{who_text(incident.verdict_by or '?')}"
        )
        return outcome
    incident.verdict, incident.verdict_reason = verdict, reason or None
    incident.verdict_by, incident.verdict_at = who, now
    shown = verdict_text(verdict, reason)
    outcome.add(TimelineEntry(now, who, f"verdict: {shown}", ""), Notice("update"))
    return outcome


def verdict_text(verdict: str, reason: str | None) -> str:
    """A verdict in words: "useful", "not useful (bot wave)"."""
    words = verdict.replace("_", " ")
    return f"{words} ({VERDICT_REASONS[reason]})" if reason in VERDICT_REASONS else words


def _resolve(incident: Incident, who: str, now: float, why: str, outcome: Outcome) -> None:
    incident.state, incident.resolved_at, incident.resolved_by = "resolved", now, who
    incident.snoozed_until = incident.resumes = incident.next_reminder_at = None
    lasted = format_duration(max(int(now - incident.opened_at), 1))
    outcome.add(
        TimelineEntry(now, who, "resolved", why),
        Notice("update"),
        Notice(
            "reply",
            f"Resolved by {who_text(who)} after {lasted}{_note(why)}",
        ),
    )


def advance_time(
    incident: Incident, now: float, policy: IncidentSettings, muted: bool = False
) -> Outcome:
    """What time does to an open incident: auto-resolve, snooze end, escalation, reminders
    (``muted``: a silence covers it; escalation and reminders wait)."""
    outcome = Outcome()
    if not incident.open:
        return outcome
    cleared = incident.rule_cleared_at
    if cleared is not None and now >= cleared + policy.auto_resolve_after:
        why = f"the rule stayed clear for {format_duration(policy.auto_resolve_after)}"
        _resolve(incident, SYSTEM, now, why, outcome)
        return outcome
    if incident.state == "snoozed" and now >= (incident.snoozed_until or 0):
        incident.state = incident.resumes or "triggered"
        incident.snoozed_until = incident.resumes = None
        if incident.state == "triggered":
            incident.escalate_from, incident.escalations = now, 0
        outcome.add(
            TimelineEntry(now, SYSTEM, "snooze ended", f"back to {incident.state}"),
            Notice("update"),
            Notice("reply", f"Snooze ended: back to {incident.state}."),
        )
    if incident.state == "triggered" and not muted:
        steps = policy.escalation
        while incident.escalations < len(steps):
            step = steps[incident.escalations]
            if now < incident.escalate_from + step.after:
                break
            incident.escalations += 1
            waited = format_duration(step.after)
            outcome.add(
                TimelineEntry(now, SYSTEM, f"escalated to {step.notify}", f"no ack in {waited}"),
                Notice(
                    "reply",
                    f"{step.notify} escalation: not acknowledged after {waited}.",
                    broadcast=True,
                ),
            )
    if incident.state == "acknowledged" and policy.remind_every and not muted:
        every = policy.remind_every
        due = incident.next_reminder_at or (incident.acked_at or now) + every
        if now >= due:
            ago = format_duration(max(int(now - (incident.acked_at or now)), 1))
            outcome.add(
                TimelineEntry(now, SYSTEM, "reminded", f"acknowledged {ago} ago"),
                Notice(
                    "reply",
                    f"Reminder: acknowledged by {who_text(incident.acked_by or '?')} {ago} ago "
                    "and not resolved.",
                ),
            )
            while due <= now:
                due += every
        incident.next_reminder_at = due
    return outcome


__all__ = [
    "SYSTEM",
    "VERDICTS",
    "VERDICT_REASONS",
    "Action",
    "Incident",
    "Notice",
    "Outcome",
    "State",
    "TimelineEntry",
    "Verdict",
    "act",
    "advance_time",
    "end_silence",
    "give_verdict",
    "incident_key",
    "is_slack_user",
    "on_alert",
    "open_incident",
    "open_silenced",
    "verdict_text",
    "who_text",
]
