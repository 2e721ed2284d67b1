"""The incident's Slack message with hostile event text: every event-derived value reaches
mrkdwn escaped, links show their own target (pure). Expected strings are written by hand."""

from __future__ import annotations

from typing import Any

from alerts.incidents.lifecycle import Incident
from alerts.incidents.oncall import IncidentSettings
from alerts.notify.slack_message import context_lines, incident_message

HOSTILE: dict[str, Any] = {
    "level": 5,
    "platforms": {"x": 3, "instagram": 0},
    "platforms_kpi": "mentions_negative",
    "posts": [
        {
            "id": "m-1",
            "platform": "x",
            "author": "<!here> evil",
            "text": "<!channel> Acme statement: "
            "<https://evil.example/login|official refund form> terrible",
            "url": "https://x.com/a|<!channel>",
            "reach": 90_000_000,
        },
        {
            "id": "m-2",
            "platform": "x",
            "author": "<@U123>\n> — forged line",
            "text": "Refund &\n<#C123> <!subteam^S1> <!everyone>",
            "url": "javascript:alert(1)",
            "reach": 5000,
        },
        {
            "id": "m-3",
            "platform": "x",
            "author": "@jo",
            "text": "退款 😡",
            "url": None,
            "reach": 12,
        },
    ],
    "terms": [["#refund", 3, 0.0], ["<b>", 2, 1.5]],
    "languages": {"en": 2, "<!here>": 1},
}

EXPECTED_LINES = [
    "*By platform* (mentions_negative): x 3, instagram 0",
    "> &lt;!channel&gt; Acme statement: &lt;https://evil.example/login|official refund form&gt;"
    " terrible\n"
    "> — &lt;!here&gt; evil on x, reach 90,000,000 "
    "<https://x.com/a%7C%3C!channel%3E|https://x.com/a%7C%3C!channel%3E>",
    "> Refund &amp; &lt;#C123&gt; &lt;!subteam^S1&gt; &lt;!everyone&gt;\n"
    "> — &lt;@U123&gt; &gt; — forged line on x, reach 5,000 javascript:alert(1)",
    "> 退款 😡\n> — @jo on x, reach 12",
    "*Rising terms*: #refund 3 (usually 0), &lt;b&gt; 2 (usually 1.5)",
    "*Languages*: en 2, &lt;!here&gt; 1",
]


def incident(**fields: Any) -> Incident:
    base: dict[str, Any] = {
        "id": "acme-1",
        "brand": "acme",
        "platform": "x",
        "rule": "negatives_high",
        "kind": "threshold",
        "severity": "critical",
        "kpi": "mentions_negative",
        "window": 300,
        "channel": "#crisis",
        "opened_at": 1000.0,
        "since": 970.0,
        "value": 3.0,
        "baseline": None,
        "score": 3.0,
        "context": HOSTILE,
    }
    return Incident(**(base | fields))


def test_context_lines_escape_every_event_value() -> None:
    assert context_lines(HOSTILE) == EXPECTED_LINES


def test_the_message_escapes_names_and_marks_the_why_section_verbatim() -> None:
    text, blocks = incident_message(
        incident(), "Ben & Jerry's <Cafe>", IncidentSettings.model_validate({}), 1000.0
    )
    assert text == (
        "[CRITICAL] Ben &amp; Jerry's &lt;Cafe&gt; (acme) on x: mentions_negative 3 in the last "
        "5m (threshold rule negatives_high)"
    )
    # The header is plain_text: Slack does not parse it, so it stays as written.
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Ben & Jerry's <Cafe> on x: mentions_negative over its threshold",
            "emoji": True,
        },
    }
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[1] == "*Brand*\nBen &amp; Jerry's &lt;Cafe&gt; (`acme`)"
    assert fields[2] == "*Platform*\nx"
    assert blocks[3] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "\n".join(EXPECTED_LINES), "verbatim": True},
    }
    board = blocks[4]["elements"][-1]["url"]
    assert board == (
        "http://localhost:3000/d/socialpulse-brand-overview?var-brand=acme&var-platform=x"
        "&from=-2630000&to=now"
    )


def test_who_acted_is_escaped_unless_a_slack_user() -> None:
    acked = incident(state="acknowledged", acked_by="<!channel> (CLI)")
    _, blocks = incident_message(acked, "Acme", IncidentSettings.model_validate({}), 1000.0)
    assert blocks[2]["text"]["text"] == ":eyes: *Acknowledged* by &lt;!channel&gt; (CLI)"
    by_slack = incident(state="acknowledged", acked_by="U0SOCIAL1")
    _, blocks = incident_message(by_slack, "Acme", IncidentSettings.model_validate({}), 1000.0)
    assert blocks[2]["text"]["text"] == ":eyes: *Acknowledged* by <@U0SOCIAL1>"


def test_a_why_section_over_slacks_limit_drops_whole_posts() -> None:
    # A post's 200 shown "<" are 800 characters escaped, its author's 100 are 400: a quote
    # is 1,221 characters, so two fit in 3,000 and the third is left out, whole; the line
    # after it still fits. A cut inside a line could end in half an entity or link.
    post = {"platform": "x", "author": "<" * 100, "text": "<" * 300, "url": None, "reach": 1}
    context = {"posts": [post | {"id": str(i)} for i in range(3)], "languages": {"en": 3}}
    _, blocks = incident_message(
        incident(context=context), "Acme", IncidentSettings.model_validate({}), 1000.0
    )
    quote = f"> {'&lt;' * 200}\n> — {'&lt;' * 100} on x, reach 1"
    assert blocks[3]["text"]["text"] == f"{quote}\n{quote}\n*Languages*: en 3"
