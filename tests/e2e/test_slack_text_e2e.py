"""Slack text is escaped, end to end on the real stack (Kafka, worker, Redis, the Slack stub):
a crisis whose posts carry mentions (``<!channel>``, ``<!here>``, ``<@U123>``, ...) and forged
links in their text, author and URL reaches Slack with every one of them as text (a language
that is no language tag as "unknown"), each URL a link only when it is http(s), showing its own
target; a CLI user's name and reason in the thread too."""

from __future__ import annotations

import json
from pathlib import Path

from socialpulse.app.settings import Settings
from tests.conftest import run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, wait_until

# A brand and platform brands.yaml lists: with cleaning.strict others are dead-lettered.
BRANDS = [{"id": "acme", "name": "Acme Coffee", "platforms": ["x", "instagram"]}]
RULES = [
    {
        "name": "negatives_high",
        "kind": "threshold",
        "kpi": "mentions_negative",
        "window": "1m",
        "value": 3,
        "clear_value": 1,
        "severity": "critical",
    }
]
# No escalation or reminder: the channel hears only the message and what the test does.
INCIDENTS = {"auto_resolve_after": "10m", "snooze_options": ["30m"]}
FORGED_LINK = "<https://evil.example/login|official refund form>"
RAW = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<!subteam^S1>",
    "<https://evil",
    "|official refund form>",
)

EXPECTED_FALLBACK = (
    "[CRITICAL] Acme Coffee (acme) on x: mentions_negative 3 in the last 1m "
    "(threshold rule negatives_high)"
)
EXPECTED_WHY = "\n".join(
    [
        "*By platform* (mentions_negative): x 3, instagram 0",
        # The biggest account: a forged link in the text, a mention as author, "|" in the URL.
        "> &lt;!channel&gt; Acme statement: "
        "&lt;https://evil.example/login|official refund form&gt; terrible",
        "> — &lt;!here&gt; evil on x, reach 90,000,000 "
        "<https://x.com/a%7C%3C!channel%3E|https://x.com/a%7C%3C!channel%3E>",
        # A javascript: URL is text, not a link.
        "> &lt;@U123&gt; says &lt;!here&gt; refund &amp; more",
        "> — &lt;@U123&gt; on x, reach 5,000 javascript:alert(document.cookie)",
        # A forged link as author and as URL: text both.
        "> &lt;!everyone&gt; &lt;#C123&gt; &lt;!subteam^S1&gt; refund",
        "> — &lt;https://evil.example/login|Acme Support&gt; on x, reach 1,000 "
        "&lt;https://evil.example/login|official refund form&gt;",
        "*Rising terms*: refund 3 (usually 0)",
        "*Languages*: en 2, unknown 1",  # a lang that is no language tag is unknown
    ]
)


def crisis() -> list[dict[str, object]]:
    """Three negative mentions of acme on x (the rule's level), each hostile its own way."""
    return [
        mention(
            "acme",
            "x",
            f"<!channel> Acme statement: {FORGED_LINK} terrible",
            "negative",
            author="<!here> evil",
        )
        | {"url": "https://x.com/a|<!channel>", "author_followers": 90_000_000, "lang": "en"},
        mention("acme", "x", "<@U123> says <!here> refund & more", "negative", author="<@U123>")
        | {"url": "javascript:alert(document.cookie)", "author_followers": 5000, "lang": "en"},
        mention(
            "acme",
            "x",
            "<!everyone> <#C123> <!subteam^S1> refund",
            "negative",
            author="<https://evil.example/login|Acme Support>",
        )
        | {"url": FORGED_LINK, "author_followers": 1000, "lang": "<!channel>"},
    ]


def test_event_text_reaches_slack_escaped(stack: Settings, tmp_path: Path, run_id: str) -> None:
    config = write_config(
        tmp_path / "config", run_id, brands=BRANDS, rules=RULES, alerts={"incidents": INCIDENTS}
    )
    worker = start_worker(config, tmp_path / "worker.log")
    settings = worker.settings
    try:
        produce(settings, settings.pipeline.topics.mentions, crisis())
        [post] = wait_until(lambda: stub_messages(settings), timeout=60, what="the incident post")
        assert (post["method"], post["text"]) == ("chat.postMessage", EXPECTED_FALLBACK)
        [why] = [b for b in post["blocks"] if "Rising terms" in json.dumps(b)]
        assert why == {
            "type": "section",
            "text": {"type": "mrkdwn", "text": EXPECTED_WHY, "verbatim": True},
        }

        # A CLI user's name and reason are free text too: the update and the thread line.
        done = run_cli(
            settings,
            "incidents",
            "ack",
            "acme-1",
            "--as",
            "<!channel>",
            "--why",
            f"<!here> see {FORGED_LINK}",
        )
        assert done.returncode == 0, done.stderr
        wait_until(lambda: len(stub_messages(settings)) >= 3, timeout=30, what="the ack")
        received = stub_messages(settings)
        update, reply = received[1:3]
        assert update["method"] == "chat.update" and update["ts"] == post["ts"]
        assert update["text"] == EXPECTED_FALLBACK
        state = update["blocks"][2]["text"]["text"]
        assert state == ":eyes: *Acknowledged* by &lt;!channel&gt; (CLI)"
        assert [b for b in update["blocks"] if "Rising terms" in json.dumps(b)] == [why]
        assert (reply["method"], reply["thread_ts"], reply["text"]) == (
            "chat.postMessage",
            post["ts"],
            "Acknowledged by &lt;!channel&gt; (CLI): &lt;!here&gt; see "
            "&lt;https://evil.example/login|official refund form&gt;",
        )
        # Nothing Slack received for the channel holds a mention or the forged label raw.
        assert len(received) == 3
        everything = json.dumps(received, ensure_ascii=False)
        assert [raw for raw in RAW if raw in everything] == []
    finally:
        stop_worker(worker)
