"""The weekly summary (pure): a week's figures from incidents and silences, and its text."""

from __future__ import annotations

from typing import Any

from alerts.detection.budget import BudgetSettings
from alerts.incidents.lifecycle import Incident
from alerts.incidents.weekly_summary import (
    MAX_CHARS,
    BudgetUse,
    RuleNoise,
    RuleShare,
    SilenceUse,
    Timing,
    summary_text,
    week_summary,
)
from alerts.silences.model import Silence

START = 1_699_833_600  # Monday 2023-11-13T00:00:00Z
END = START + 7 * 86400
DAY = 86400
HOSTILE = "<!channel> *x* <@U1>"
BUDGET = BudgetSettings.model_validate(
    {
        "per_week": {"critical": 1, "warning": 1, "info": 2},
        "overrides": [{"platforms": ["instagram"], "severities": ["warning"], "per_week": 1.5}],
    }
)


def incident(n: int, opened: float, rule: str = "spike", **fields: Any) -> Incident:
    """An incident notified when it opened, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "id": f"acme-{n}",
        "brand": "acme",
        "platform": "x",
        "rule": rule,
        "kind": "threshold",
        "severity": "warning",
        "kpi": "mentions_negative",
        "window": 300,
        "channel": "#crisis",
        "opened_at": opened,
        "since": opened - 30,
        "value": 12.0,
        "baseline": None,
        "score": None,
        "rules": [rule],
        "notified_at": opened,
        **fields,
    }
    return Incident(**values)


def silence(sid: str, starts: float, ends: float, who: str, why: str, **fields: Any) -> Silence:
    return Silence(sid, starts, ends, who, why, starts - 60, "slack", **fields)


def week_incidents() -> list[Incident]:
    t1, t2, t4, t5, t6 = START + 100, START + DAY, START + 3 * DAY, START + 4 * DAY, START + 5 * DAY
    notified2 = t2 + 1800  # held by the "launch" silence until it was expired
    return [
        incident(
            1,
            t1,
            "negatives_high",
            severity="critical",
            rules=["negatives_high", "volume_drop"],
            firings=5,
            state="resolved",
            acked_at=t1 + 240,
            acked_by="U123ABC",
            resolved_at=t1 + 3600,
            verdict="useful",
        ),
        incident(
            2,
            t2,
            "volume_drop",
            silenced_by="launch",
            notified_at=notified2,
            firings=3,
            state="resolved",
            acked_at=notified2 + 95,
            resolved_at=notified2 + 7200,
            verdict="not_useful",
            verdict_reason="expected_event",
        ),
        # Held by the silence, never notified, resolved by hand: no response times.
        incident(
            3,
            START + 2 * DAY,
            "volume_drop",
            silenced_by="launch",
            notified_at=None,
            firings=2,
            state="resolved",
            resolved_at=START + 2 * DAY + 60,
        ),
        # Auto-resolved without an acknowledgement.
        incident(
            4,
            t4,
            "spike",
            state="resolved",
            resolved_at=t4 + 1200,
            resolved_by="socialpulse",
            verdict="not_useful",
            verdict_reason="bot_wave",
        ),
        incident(
            5,
            t5,
            "alpha",
            severity="info",
            state="acknowledged",
            acked_at=t5 + 60,
            verdict="not_useful",
        ),
        # Acknowledged and resolved only after the week's end: neither, as the week ended.
        incident(
            6, t6, "zeta", firings=4, state="resolved", acked_at=END + 10, resolved_at=END + 20
        ),
    ]


def outside_week() -> list[Incident]:
    """Before the week (in the 30 days) and at its end: only the floor counts them."""
    return [
        incident(7, START - 10 * DAY, "spike", verdict="not_useful"),
        incident(8, START - 1, "spike", verdict="useful", firings=50),
        incident(9, START - 20 * DAY, "alpha", verdict="useful"),
        incident(10, START - 2 * DAY, "alpha", verdict="not_useful", severity="critical"),
        incident(11, END, "omega", severity="critical", firings=9),
    ]


def week_silences() -> list[Silence]:
    return [
        silence("bots", START + 4 * DAY, START + 5 * DAY, "ops<team>", "bot wave & spam",
                brands=("acme",), platforms=("x",)),
        silence("launch", START + DAY - 400, START + DAY + 7200, "U123ABC", HOSTILE,
                brands=("acme",), rules=("volume_drop",),
                expired_at=START + DAY + 1800, expired_by="U123ABC"),
    ]  # fmt: skip


def rich() -> Any:
    return week_summary(
        "acme",
        "Acme & <Co>",
        ["x", "instagram"],
        START,
        END,
        [*week_incidents(), *outside_week()],
        week_silences(),
        BUDGET,
        0.5,
        3,
    )


def test_the_figures_of_a_week() -> None:
    s = rich()
    assert (s.opened, s.notified) == (6, 5)
    assert s.notified_by_severity == (("critical", 1), ("warning", 3), ("info", 1))
    # Both silenced ones count, the one notified when its silence ended included.
    assert (s.silenced, s.silenced_never_notified) == (2, 1)
    # From notification (the silenced one: when the silence ended), as at the week's end.
    assert s.acknowledge == Timing(count=3, median=95.0, longest=240.0, missing=2)
    assert s.resolve == Timing(count=3, median=3600.0, longest=7200.0, missing=2)
    assert (s.useful, s.not_useful, s.without_verdict) == (1, 3, 2)
    assert s.useful_share == 0.25
    assert s.not_useful_reasons == (("bot_wave", 1), ("expected_event", 1), ("", 1))
    # volume_drop joined incident 1 and opened 2; ties of one incident go by name.
    assert s.noisiest == (
        RuleNoise("volume_drop", 2, 8),
        RuleNoise("alpha", 1, 1),
        RuleNoise("negatives_high", 1, 5),
    )
    # Over the 30 days: incidents before the week count, equal shares go by name.
    assert s.below_floor == (RuleShare("alpha", 1, 3), RuleShare("spike", 1, 3))
    assert s.silences == (
        SilenceUse(
            "launch", "brand=acme rule=volume_drop", "U123ABC", HOSTILE,
            START + DAY - 400, START + DAY + 1800, 2,
        ),
        SilenceUse(
            "bots", "brand=acme platform=x", "ops<team>", "bot wave & spam",
            START + 4 * DAY, START + 5 * DAY, 0,
        ),
    )  # fmt: skip
    assert s.budget == (
        BudgetUse("critical", 1, 2.0),
        BudgetUse("warning", 3, 2.5),
        BudgetUse("info", 1, 4.0),
    )
    assert [b.over for b in s.budget] == [False, True, False]


def test_the_text_of_a_week() -> None:
    text = summary_text(rich())
    launch = "<!date^1699919600^{date_short} {time}|2023-11-13T23:53:20Z>"
    launch_end = "<!date^1699921800^{date_short} {time}|2023-11-14T00:30:00Z>"
    bots = "<!date^1700179200^{date_short} {time}|2023-11-17T00:00:00Z>"
    bots_end = "<!date^1700265600^{date_short} {time}|2023-11-18T00:00:00Z>"
    assert text == "\n".join(
        [
            "*Weekly summary for Acme &amp; &lt;Co&gt; (acme)*, "
            "<!date^1699833600^{date_short}|2023-11-13T00:00:00Z> to "
            "<!date^1700438400^{date_short}|2023-11-20T00:00:00Z>",
            "*Incidents:* 6 opened, 5 notified (1 critical, 3 warning, 1 info); 2 silenced "
            "(1 never notified, 1 notified when the silence ended).",
            "*Time to acknowledge:* median 95s, longest 4m (3 acknowledged); 2 not acknowledged.",
            "*Time to resolve:* median 1h, longest 2h (3 resolved); 2 still open.",
            "*Useful:* 25% (1 useful, 3 not useful: 1 bot wave, 1 expected event, "
            "1 no reason given); 2 without verdict.",
            "*Noisiest rules:* volume_drop (2 incidents, 8 firings); alpha (1 incident, "
            "1 firing); negatives_high (1 incident, 5 firings).",
            "*Silences used:*",
            "• launch: &lt;!channel&gt; *x* &lt;@U1&gt; (brand=acme rule=volume_drop), "
            f"by <@U123ABC>, {launch} to {launch_end}: held 2 incidents",
            "• bots: bot wave &amp; spam (brand=acme platform=x), by ops&lt;team&gt;, "
            f"{bots} to {bots_end}: held 0 incidents",
            "*Notification budget:* critical 1 of 2, warning 3 of 2.5 (over), info 1 of 4.",
            "*Rules below the 50% useful floor (30 days, at least 3 verdicts):*",
            "• alpha: 33% useful (1 of 3)",
            "• spike: 33% useful (1 of 3)",
        ]
    )
    # Nothing from people or events can mention anyone or open a link.
    assert "<!channel>" not in text and "<@U1>" not in text and "<Co>" not in text


def test_the_empty_week() -> None:
    s = week_summary("acme", "Acme", ["x"], START, END, outside_week(), [], BUDGET, 0.5, 3)
    assert (s.opened, s.notified, s.silenced, s.useful_share, s.noisiest) == (0, 0, 0, None, ())
    assert s.acknowledge == Timing(0, None, None, 0)
    assert s.budget[1] == BudgetUse("warning", 0, 1.0)
    assert summary_text(s) == (
        "*Weekly summary for Acme (acme)*, <!date^1699833600^{date_short}|2023-11-13T00:00:00Z>"
        " to <!date^1700438400^{date_short}|2023-11-20T00:00:00Z>\n"
        "No incidents.\n"
        "No silences used.\n"
        "*Notification budget:* critical 0 of 1, warning 0 of 1, info 0 of 2.\n"
        "No rule below the 50% useful floor (30 days, at least 3 verdicts)."
    )


def test_silenced_incidents_never_notified_have_no_response_times() -> None:
    held = incident(1, START + 10, silenced_by="s1", notified_at=None, state="silenced")
    s = week_summary("acme", "Acme", ["x"], START, END, [held], [], BUDGET, 0.5, 3)
    assert (s.opened, s.notified, s.silenced, s.silenced_never_notified) == (1, 0, 1, 1)
    assert s.acknowledge == s.resolve == Timing(0, None, None, 0)
    assert s.noisiest == () and s.budget[1].spent == 0
    assert summary_text(s).splitlines()[1:3] == [
        "*Incidents:* 1 opened, 0 notified; 1 silenced (1 never notified).",
        "*Useful:* no verdict given on 1 incident.",
    ]


def test_the_floor_counts_verdicts_over_30_days_from_min_verdicts_and_below_it_only() -> None:
    def verdicts(rule: str, useful: int, not_useful: int, first: int) -> list[Incident]:
        marks = ["useful"] * useful + ["not_useful"] * not_useful
        return [
            incident(first + k, START - 20 * DAY + k * DAY, rule, verdict=mark)
            for k, mark in enumerate(marks)
        ]

    incidents = [
        *verdicts("exactly_min", 1, 3, 100),  # 4 verdicts, 25%: reported
        *verdicts("too_few", 0, 3, 200),  # 3 verdicts: not enough to judge
        *verdicts("at_floor", 2, 2, 300),  # 50% is not below 50%
        *verdicts("none_useful", 0, 5, 400),  # 0%: first
        # Incidents without a verdict do not count; joined rules are not the opening rule.
        incident(500, START + DAY, "too_few"),
        incident(501, START + DAY, "new", rules=["new", "none_useful"], verdict="useful"),
    ]
    s = week_summary("acme", "Acme", ["x"], START, END, incidents, [], BUDGET, 0.5, 4)
    assert s.below_floor == (RuleShare("none_useful", 0, 5), RuleShare("exactly_min", 1, 4))
    assert [r.share for r in s.below_floor] == [0.0, 0.25]
    assert summary_text(s).splitlines()[-3:] == [
        "*Rules below the 50% useful floor (30 days, at least 4 verdicts):*",
        "• none_useful: 0% useful (0 of 5)",
        "• exactly_min: 25% useful (1 of 4)",
    ]


def test_the_budget_is_summed_over_platforms_and_over_only_past_it() -> None:
    week = [
        incident(1, START + 10, severity="critical"),
        incident(2, START + 20, severity="critical"),
        incident(3, START + 30, severity="warning"),
        incident(4, START + 40, severity="warning"),
        incident(5, START + 50, severity="info", silenced_by="s", notified_at=None),
    ]
    one = week_summary("acme", "Acme", ["x"], START, END, week, [], BUDGET, 0.5, 3)
    assert [(b.spent, b.budget, b.over) for b in one.budget] == [
        (2, 1.0, True),
        (2, 1.0, True),
        (0, 2.0, False),  # a silenced incident costs nothing
    ]
    two = week_summary("acme", "Acme", ["x", "tiktok"], START, END, week, [], BUDGET, 0.5, 3)
    # Exactly the budget is not over it.
    assert [(b.spent, b.budget, b.over) for b in two.budget] == [
        (2, 2.0, False),
        (2, 2.0, False),
        (0, 4.0, False),
    ]
    line = "*Notification budget:* critical 2 of 1 (over), warning 2 of 1 (over), info 0 of 2."
    assert line in summary_text(one).splitlines()


def test_hostile_names_are_escaped() -> None:
    week = [
        incident(1, START + 10, "a<b>", verdict="not_useful", verdict_reason="<!here>"),
    ]
    hush = silence("s&1", START, START + 60, "<!everyone>", HOSTILE, rules=("a<b>",))
    s = week_summary("acme", "<!channel>", ["x"], START, END, week, [hush], BUDGET, 0.5, 1)
    text = summary_text(s)
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U1>", "<b>"):
        assert raw not in text
    assert "*Weekly summary for &lt;!channel&gt; (acme)*" in text
    assert "1 not useful: 1 &lt;!here&gt;)" in text
    assert "*Noisiest rules:* a&lt;b&gt; (1 incident, 1 firing)." in text
    assert (
        "• s&amp;1: &lt;!channel&gt; *x* &lt;@U1&gt; (rule=a&lt;b&gt;), by &lt;!everyone&gt;,"
        in (text)
    )
    assert "• a&lt;b&gt;: 0% useful (0 of 1)" in text


def test_lists_are_capped_and_the_text_stays_under_slacks_limit() -> None:
    many = [
        silence(f"s{k:02}", START + k, START + 3600, "U123ABC", f"planned {k}", brands=("acme",))
        for k in range(15)
    ]
    s = week_summary("acme", "Acme", ["x"], START, END, [], many, BUDGET, 0.5, 3)
    lines = summary_text(s).splitlines()
    shown = [line for line in lines if line.startswith("• s")]
    assert [line.split(":")[0] for line in shown] == [f"• s{k:02}" for k in range(10)]
    assert "…and 5 more" in lines
    # The longest names and comments there can be, escaping making them longer still.
    hostile = [
        silence(f"{'&' * 90}{k}", START + k, START + 3600, "<" * 90, "&" * 500,
                brands=("acme",), rules=tuple(f"r{j}{'_' * 60}" for j in range(5)))
        for k in range(40)
    ]  # fmt: skip
    rules = [
        incident(k, START - DAY - k, f"r{k:02}{'_' * 62}", verdict="not_useful") for k in range(40)
    ]
    s = week_summary("acme", "&" * 200, ["x"], START, END, rules, hostile, BUDGET, 0.5, 1)
    text = summary_text(s)
    assert len(text) <= MAX_CHARS
    assert "&amp;&amp;&amp;" in text and "&am…" not in text and "&a…" not in text
    # Silences give way first (four fit), then rules would; every part is still there.
    assert text.count("\n• &amp;") == 4 and "\n…and 36 more\n" in text
    assert text.count("\n• r") == 10 and text.endswith("\n…and 30 more")
    assert "*Notification budget:*" in text and "(30 days, at least 1 verdict):*" in text
