"""The incident lifecycle and the on-call policy (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from alerts.detection.rule_check import AlertEvent
from alerts.incidents.lifecycle import (
    Incident,
    Notice,
    act,
    advance_time,
    end_silence,
    give_verdict,
    on_alert,
    open_incident,
    open_silenced,
)
from alerts.incidents.oncall import IncidentSettings, QuietHours

POLICY = IncidentSettings.model_validate(
    {
        "escalation": [
            {"after": "5m", "notify": "<!subteam^S1>"},
            {"after": "15m", "notify": "<@U9>"},
        ],
        "remind_every": "1h",
        "auto_resolve_after": "10m",
    }
)


def event(kind: str = "fired", at: float = 1000.0, value: float = 12) -> AlertEvent:
    return AlertEvent(
        kind,
        "negatives_high",
        "threshold",
        "critical",
        "acme",
        "x",
        "mentions_negative",
        300,
        at,
        value,
        None,
        value,
        at - 30,  # type: ignore[arg-type]
    )


def opened(at: float = 1000.0):
    return open_incident("acme-1", event(at=at), "#crisis", at, {})


def test_a_firing_opens_one_incident_and_more_firings_join_it() -> None:
    incident, outcome = opened()
    assert (incident.state, incident.firings, incident.key) == ("triggered", 1, "x|#crisis")
    assert outcome.notices == [Notice("post")]
    again = on_alert(incident, event(at=1010, value=20), 1010, POLICY)
    assert incident.firings == 2 and incident.value == 20
    assert again.notices == [
        Notice("update"),
        Notice(
            "reply",
            "Fired again (firing 2): mentions_negative 20 in the last 5m "
            "(threshold rule negatives_high)",
        ),
    ]


def test_the_confirmation_of_an_early_firing_refreshes_the_figures_and_pings_nobody() -> None:
    incident, _ = opened()
    timeline = incident.to_dict().get("timeline")
    confirmed = on_alert(incident, replace(event(value=31), confirms=True), 1002, POLICY)
    assert (incident.firings, incident.value, incident.score) == (1, 31, 31)
    assert confirmed.notices == [Notice("update")] and confirmed.timeline == []
    assert incident.to_dict().get("timeline") == timeline
    same = on_alert(incident, replace(event(value=31), confirms=True), 1003, POLICY)
    assert same.notices == []  # nothing changed: no Slack call


def test_one_surge_is_one_incident_whose_severity_may_rise_and_which_ends_with_its_last_rule() -> (
    None
):
    surge = replace(event(), rule="surge", kind="deviation", severity="warning", kpi="mentions")
    incident, outcome = open_incident("acme-1", surge, "#crisis", 1000, {})
    assert outcome.notices == [Notice("post")]
    spike = replace(event(at=1060, value=40), rule="negatives_high")
    joined = on_alert(incident, spike, 1060, POLICY)
    # One page: the message is updated and the thread told, nothing is posted anew.
    assert [n.kind for n in joined.notices] == ["update", "reply"]
    assert joined.notices[1].text.startswith("Severity rose to critical (firing 2): ")
    assert (incident.severity, incident.rules, incident.firing_rules) == (
        "critical",
        ["surge", "negatives_high"],
        ["surge", "negatives_high"],
    )
    assert [e.action for e in joined.timeline] == ["severity rose"]
    # The surge rule clears first: the incident goes on while the spike still fires.
    assert on_alert(incident, replace(surge, event="cleared", at=1200), 1200, POLICY).notices == []
    assert incident.rule_cleared_at is None
    advance_time(incident, 1200 + 3600, POLICY)
    assert incident.state == "triggered"
    on_alert(incident, replace(spike, event="cleared", at=5000), 5000, POLICY)
    assert incident.rule_cleared_at == 5000
    advance_time(incident, 5000 + 600, POLICY)
    assert (incident.state, incident.resolved_at) == ("resolved", 5600)


def test_a_worse_firing_ends_a_snooze_and_pings() -> None:
    surge = replace(event(), rule="surge", kind="deviation", severity="warning", kpi="mentions")
    incident, _ = open_incident("acme-1", surge, "#crisis", 1000, {})
    act(incident, "snooze", "U0SOCIAL1", 1010, snooze_for=7200)
    assert incident.state == "snoozed"
    outcome = on_alert(incident, replace(event(at=1100), rule="negatives_high"), 1100, POLICY)
    assert (incident.state, incident.snoozed_until, incident.escalate_from) == (
        "triggered",
        None,
        1100,
    )
    assert [n.kind for n in outcome.notices] == ["update", "reply"]


def test_an_incident_stored_before_joining_keeps_its_rule_and_resolves() -> None:
    incident, _ = opened()
    data = incident.to_dict()
    del data["rules"], data["firing_rules"]
    legacy = Incident.from_dict(data)
    assert (legacy.rules, legacy.firing_rules) == (["negatives_high"], ["negatives_high"])
    on_alert(legacy, event("cleared", at=2000), 2000, POLICY)
    advance_time(legacy, 2600, POLICY)
    assert legacy.state == "resolved"


def test_escalation_steps_come_in_order_until_acknowledged() -> None:
    incident, _ = opened()
    assert advance_time(incident, 1000 + 299, POLICY).notices == []
    first = advance_time(incident, 1000 + 300, POLICY)
    assert first.notices == [
        Notice("reply", "<!subteam^S1> escalation: not acknowledged after 5m.", broadcast=True)
    ]
    assert [e.action for e in first.timeline] == ["escalated to <!subteam^S1>"]
    act(incident, "ack", "U01", 1000 + 600)
    assert advance_time(incident, 1000 + 900, POLICY).notices == []  # acknowledged: no step 2
    assert incident.escalations == 1


def test_acknowledged_incidents_are_reminded_every_interval() -> None:
    incident, _ = opened()
    act(incident, "ack", "U01", 2000)
    assert advance_time(incident, 2000 + 3599, POLICY).notices == []
    reminder = advance_time(incident, 2000 + 3600, POLICY)
    assert reminder.notices == [
        Notice("reply", "Reminder: acknowledged by <@U01> 1h ago and not resolved.")
    ]
    assert advance_time(incident, 2000 + 3700, POLICY).notices == []
    assert incident.next_reminder_at == 2000 + 7200


def test_actions_are_refused_when_they_make_no_sense() -> None:
    incident, _ = opened()
    assert act(incident, "ack", "U01", 1100, "on it").refused is None
    assert act(incident, "ack", "U02", 1110).refused == (
        "incident acme-1 is already acknowledged by <@U01>"
    )
    assert act(incident, "snooze", "alice (CLI)", 1120).refused == (
        "a snooze needs a duration, e.g. 30m"
    )
    done = act(incident, "resolve", "alice (CLI)", 1180, "false alarm")
    assert done.notices[1] == Notice("reply", "Resolved by alice (CLI) after 3m: false alarm")
    assert act(incident, "ack", "U01", 1300).refused == "incident acme-1 is already resolved"


def test_a_snooze_ends_back_in_the_state_it_came_from() -> None:
    incident, _ = opened()
    act(incident, "snooze", "U01", 1100, snooze_for=1800)
    assert (incident.state, incident.resumes, incident.snoozed_until) == (
        "snoozed",
        "triggered",
        2900,
    )
    # Snoozed: a new firing refreshes the message but pings nobody; no escalation either.
    assert on_alert(incident, event(at=1200), 1200, POLICY).notices == [Notice("update")]
    assert advance_time(incident, 2000, POLICY).notices == []
    ended = advance_time(incident, 2900, POLICY)
    assert incident.state == "triggered" and incident.escalate_from == 2900
    assert ended.notices[1] == Notice("reply", "Snooze ended: back to triggered.")


def test_the_rule_staying_clear_resolves_the_incident_unless_it_fires_again() -> None:
    incident, _ = opened()
    act(incident, "ack", "U01", 1100)
    cleared = on_alert(incident, event("cleared", at=1300, value=3), 1302, POLICY)
    assert cleared.notices[0].text.endswith("Resolves by itself if it stays clear for 10m.")
    on_alert(incident, event(at=1500), 1502, POLICY)  # fires again within the wait
    assert advance_time(incident, 1300 + 600, POLICY).notices == []
    on_alert(incident, event("cleared", at=2000, value=3), 2002, POLICY)
    resolved = advance_time(incident, 2600, POLICY)
    assert incident.state == "resolved" and incident.resolved_by == "socialpulse"
    assert resolved.timeline[0].why == "the rule stayed clear for 10m"


def test_routes_pick_the_first_match_and_default_to_the_channel() -> None:
    policy = IncidentSettings.model_validate(
        {
            "routes": [
                {"brands": ["acme"], "severities": ["critical"], "channel": "#acme"},
                {"severities": ["critical"], "channel": "#all-crit"},
            ]
        }
    )
    assert policy.channel_for("acme", "critical", "#social") == "#acme"
    assert policy.channel_for("globex", "critical", "#social") == "#all-crit"
    assert policy.channel_for("acme", "warning", "#social") == "#social"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_quiet_hours_hold_low_severities_until_morning_never_critical() -> None:
    policy = IncidentSettings.model_validate(
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}
    )
    # 23:30 in Berlin (UTC+1 in November) holds warnings until 07:00 Berlin = 06:00 UTC.
    night = ts("2026-11-22T22:30:00")
    assert policy.held_until("warning", night) == ts("2026-11-23T06:00:00")
    assert policy.held_until("critical", night) is None
    # 05:00 Berlin: until 07:00 the same day; noon: not held.
    assert policy.held_until("info", ts("2026-11-23T04:00:00")) == ts("2026-11-23T06:00:00")
    assert policy.held_until("warning", ts("2026-11-23T11:00:00")) is None
    with pytest.raises(ValidationError, match="critical notifications are never held"):
        QuietHours.model_validate({"start": "22:00", "end": "07:00", "hold": ["critical"]})
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        QuietHours.model_validate({"start": "22:00", "end": "07:00", "timezone": "Mars/Base"})


def test_names_and_reasons_in_thread_lines_are_escaped() -> None:
    # A CLI user's --as and --why are free text: they must not ping the channel.
    incident, _ = opened()
    acked = act(incident, "ack", "<!channel> (CLI)", 1100, "see <https://evil.example|form> & go")
    assert acked.notices[1] == Notice(
        "reply",
        "Acknowledged by &lt;!channel&gt; (CLI): see &lt;https://evil.example|form&gt; &amp; go",
    )
    assert act(incident, "ack", "U02", 1110).refused == (
        "incident acme-1 is already acknowledged by &lt;!channel&gt; (CLI)"
    )
    snoozed = act(incident, "snooze", "<@U123> (CLI)", 1120, "<!here>", snooze_for=1800)
    assert snoozed.notices[1] == Notice(
        "reply",
        "Snoozed for 30m by &lt;@U123&gt; (CLI), until <!date^2920^{time}|2920>: &lt;!here&gt;",
    )
    done = act(incident, "resolve", "<!everyone> (CLI)", 1180, "<#C123>")
    assert done.notices[1] == Notice(
        "reply", "Resolved by &lt;!everyone&gt; (CLI) after 3m: &lt;#C123&gt;"
    )
    # The timeline keeps what was typed: it is not Slack text.
    assert [(e.who, e.why) for e in done.timeline] == [("<!everyone> (CLI)", "<#C123>")]


def test_a_verdict_is_given_changed_and_refused_when_it_says_nothing_new() -> None:
    incident, _ = opened()
    said = give_verdict(incident, "not_useful", "bot_wave", "U0ONE", 2000)
    assert (incident.verdict, incident.verdict_reason, incident.verdict_by) == (
        "not_useful",
        "bot_wave",
        "U0ONE",
    )
    assert [(e.who, e.action) for e in said.timeline] == [
        ("U0ONE", "verdict: not useful (bot wave)")
    ]
    assert said.notices == [Notice("update")]  # the message shows it; nobody is pinged
    again = give_verdict(incident, "not_useful", "bot_wave", "U0TWO", 2001)
    assert again.refused == "incident acme-1 is already marked not useful (bot wave) by <@U0ONE>"
    changed = give_verdict(incident, "useful", "", "U0TWO", 2002)
    assert (changed.refused, incident.verdict, incident.verdict_reason) == (None, "useful", None)
    for verdict, reason, refusal in [
        ("great", "", "verdict 'great' is not one of useful, not_useful"),
        ("useful", "bot_wave", "reason 'bot_wave': a not_useful verdict takes one of"),
        ("not_useful", "boring", "reason 'boring': a not_useful verdict takes one of"),
    ]:
        outcome = give_verdict(incident, verdict, reason, "U0THREE", 2003)
        assert outcome.refused is not None and outcome.refused.startswith(refusal)
    # A resolved incident is judged too (verdicts often come after).
    act(incident, "resolve", "U0ONE", 2100)
    assert give_verdict(incident, "not_useful", "", "U0ONE", 2200).refused is None


def test_a_silenced_incident_tells_nobody_until_its_silence_ends() -> None:
    incident, outcome = open_silenced("acme-1", event(), "#crisis", 1000, {}, "s-1", "launch")
    assert (incident.state, incident.notified_at, incident.silenced_by) == ("silenced", None, "s-1")
    assert outcome.notices == []
    assert act(incident, "ack", "U0ONE", 1001).refused == (
        "incident acme-1 is silenced by s-1: nobody was notified; expire the silence to open "
        "it, or resolve it"
    )
    assert advance_time(incident, 5000, POLICY).notices == []  # no escalation while silenced
    opened_now = end_silence(incident, 6000, "silence s-1 ended")
    assert opened_now.notices == [Notice("post")]
    assert (incident.state, incident.notified_at, incident.escalate_from) == (
        "triggered",
        6000,
        6000,
    )
    assert end_silence(incident, 6001, "again").timeline == []  # only a silenced one opens
