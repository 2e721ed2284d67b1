"""Incidents end to end on the real stack (Kafka, worker, Redis, the Slack stub): a negative
burst opens one incident and one message; unanswered, it escalates; forged, unsigned, replayed
and non-responder clicks change nothing; a signed Acknowledge does, through Slack failures
(429, then 500s) delivered exactly once and in order; a new firing joins it; the rule staying
clear resolves it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from socialpulse.app.settings import Settings
from tests.conftest import run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import stub_messages, wait_until
from tests.e2e.helpers.slack import click, incident, stub_post

BRANDS = [{"id": "acme", "name": "Acme Coffee", "platforms": ["x", "instagram"]}]
RULES = [
    {
        "name": "negatives_high",
        "kind": "threshold",
        "kpi": "mentions_negative",
        "window": "1m",
        "value": 6,
        "clear_value": 2,
        "severity": "critical",
    }
]
INCIDENTS = {
    "responders": ["U0SOCIAL1"],
    "escalation": [{"after": "20s", "notify": "<!subteam^S0ONCALL|@social-oncall>"}],
    "auto_resolve_after": "20s",
    "snooze_options": ["30m", "2h"],
}


def calls(settings: Settings) -> list[tuple[str, str]]:
    """(method, text) of every Slack call the stub accepted for the test's channel."""
    return [(m["method"], m.get("text", "")) for m in stub_messages(settings)]


def test_incident_lifecycle_from_slack(stack: Settings, tmp_path: Path, run_id: str) -> None:
    config = write_config(
        tmp_path / "config",
        run_id,
        brands=BRANDS,
        rules=RULES,
        alerts={"incidents": INCIDENTS},
    )
    worker = start_worker(config, tmp_path / "worker.log")
    settings = worker.settings
    topic = settings.pipeline.topics.mentions
    try:
        burst = [mention("acme", "x", "Charged twice, no #refund", "negative") for _ in range(6)]
        for i, post in enumerate(burst):
            post |= {"author_followers": 1000 * i, "url": f"https://x.com/a/{i}", "lang": "en"}
        produce(settings, topic, burst)
        [post] = wait_until(lambda: stub_messages(settings), timeout=40, what="the incident post")
        assert post["method"] == "chat.postMessage"
        assert post["text"] == (
            "[CRITICAL] Acme Coffee (acme) on x: mentions_negative 6 in the last 1m "
            "(threshold rule negatives_high)"
        )
        actions = next(b for b in post["blocks"] if b["type"] == "actions")
        buttons = {e["action_id"]: e.get("value") for e in actions["elements"]}
        assert buttons == {
            "ack": "acme-1",
            "snooze_1800": "acme-1",
            "snooze_7200": "acme-1",
            "resolve": "acme-1",
            "board": None,
        }
        opened = incident(settings, "acme-1")
        assert (opened["state"], opened["firings"], opened["rule"]) == (
            "triggered",
            1,
            "negatives_high",
        )
        context = opened["context"]
        assert context["platforms"] == {"x": 6, "instagram": 0}
        # Why: the posts with most reach, the terms that rose from nothing, the language.
        assert [p["url"] for p in context["posts"]] == [f"https://x.com/a/{i}" for i in (5, 4, 3)]
        assert context["posts"][0]["reach"] == 5000
        assert context["terms"] == [["#refund", 6, 0.0], ["charged", 6, 0.0], ["twice", 6, 0.0]]
        assert context["languages"] == {"en": 6}
        why = next(b for b in post["blocks"] if "Rising terms" in json.dumps(b))["text"]["text"]
        assert "*Rising terms*: #refund 6 (usually 0), charged 6 (usually 0)" in why
        assert "*Languages*: en 6" in why

        # Nobody acknowledges within 20 s: re-notified in the thread and the channel.
        wait_until(lambda: len(calls(settings)) >= 2, timeout=40, what="the escalation")
        escalation = stub_messages(settings)[1]
        assert escalation["thread_ts"] == post["ts"] and escalation["reply_broadcast"] is True
        assert escalation["text"] == (
            "<!subteam^S0ONCALL|@social-oncall> escalation: not acknowledged after 20s."
        )

        # Unsigned, forged and replayed clicks are refused and change nothing.
        ack = {"user": "U0SOCIAL1", "action_id": "ack", "value": "acme-1"}
        assert click(settings, sign=False, **ack) == 401
        assert click(settings, sign="wrong", **ack) == 401
        assert click(settings, age=600, **ack) == 401
        # A signed click by someone who is not a responder: only they hear why.
        assert click(settings, user="U0INTERN", action_id="ack", value="acme-1") == 200
        refusal = wait_until(
            lambda: [m for m in stub_messages(settings) if m["method"] == "chat.postEphemeral"],
            what="the ephemeral refusal",
        )
        assert refusal[0]["user"] == "U0INTERN"
        assert refusal[0]["text"].startswith("Only the on-call responders")
        time.sleep(2)
        assert incident(settings, "acme-1")["state"] == "triggered"
        assert len(stub_messages(settings)) == 3  # post, escalation, ephemeral

        # Slack answers 429, then 500 until slack-sdk gives up: the signed Acknowledge still
        # lands once, its update and thread line in order.
        faults = [{"status": 429, "retry_after": 1}] + [{"status": 500}] * 4
        channel = settings.alerts.slack.channel
        stub_post(settings, "/stub/faults", {"responses": faults, "channel": channel})
        assert click(settings, **ack) == 200
        acked = wait_until(
            lambda: [m for m in stub_messages(settings)[3:]], timeout=60, what="the ack's update"
        )
        wait_until(lambda: len(stub_messages(settings)) >= 5, timeout=30, what="the ack reply")
        update, reply = stub_messages(settings)[3:5]
        assert acked[0] == update
        assert update["method"] == "chat.update" and update["ts"] == post["ts"]
        state_block = next(b for b in update["blocks"] if b["type"] == "section" and "text" in b)
        assert state_block["text"]["text"] == ":eyes: *Acknowledged* by <@U0SOCIAL1>"
        assert "ack" not in {
            e["action_id"]
            for e in next(b for b in update["blocks"] if b["type"] == "actions")["elements"]
        }
        assert (reply["thread_ts"], reply["text"]) == (
            post["ts"],
            "Acknowledged by <@U0SOCIAL1>: from Slack",
        )
        now = incident(settings, "acme-1")
        assert (now["state"], now["acked_by"]) == ("acknowledged", "U0SOCIAL1")
        assert [e["action"] for e in now["timeline"]] == [
            "opened",
            "escalated to <!subteam^S0ONCALL|@social-oncall>",
            "acknowledged",
        ]
        assert now["timeline"][2]["who"] == "U0SOCIAL1"

        # The burst leaves the 1m window: the rule clears; 6 more negatives fire it again
        # within the auto-resolve wait, which joins the same incident.
        wait_until(
            lambda: any("The rule cleared" in t for _, t in calls(settings)),
            timeout=90,
            what="the rule to clear",
        )
        cleared = next(t for _, t in calls(settings) if "The rule cleared" in t)
        assert cleared.endswith("Resolves by itself if it stays clear for 20s.")
        produce(
            settings, topic, [mention("acme", "x", "awful again", "negative") for _ in range(6)]
        )
        wait_until(
            lambda: any(t.startswith("Fired again (firing 2)") for _, t in calls(settings)),
            timeout=40,
            what="the second firing",
        )
        joined = incident(settings, "acme-1")
        assert (joined["firings"], joined["state"]) == (2, "acknowledged")
        posts = [
            m
            for m in stub_messages(settings)
            if m["method"] == "chat.postMessage" and "thread_ts" not in m
        ]
        assert len(posts) == 1  # one message for the whole storm

        # It clears again and stays clear for 20 s: resolved by itself.
        wait_until(
            lambda: incident(settings, "acme-1")["state"] == "resolved",
            timeout=120,
            what="the auto-resolve",
        )
        resolved = incident(settings, "acme-1")
        assert resolved["resolved_by"] == "socialpulse"
        assert resolved["timeline"][-1]["why"] == "the rule stayed clear for 20s"
        wait_until(
            lambda: any(t.startswith("Resolved by socialpulse") for _, t in calls(settings)),
            what="the resolve line",
        )
        # Every notice exactly once and in order (the stub records accepted calls only).
        # (method, the text's first 24 characters before any ":" or " (")
        said = [(m, t.split(":")[0].split(" (")[0][:24]) for m, t in calls(settings)]
        assert said == [
            ("chat.postMessage", "[CRITICAL] Acme Coffee"),
            ("chat.postMessage", "<!subteam^S0ONCALL|@soci"),
            ("chat.postEphemeral", "Only the on-call respond"),
            ("chat.update", "[CRITICAL] Acme Coffee"),
            ("chat.postMessage", "Acknowledged by <@U0SOCI"),
            ("chat.postMessage", "The rule cleared"),
            ("chat.update", "[CRITICAL] Acme Coffee"),
            ("chat.postMessage", "Fired again"),
            ("chat.postMessage", "The rule cleared"),
            ("chat.update", "[CRITICAL] Acme Coffee"),
            ("chat.postMessage", "Resolved by socialpulse "),
        ]
        assert run_cli(settings, "incidents", "ack", "acme-1").returncode == 1
    finally:
        stop_worker(worker)


def test_cli_acts_on_incidents_without_a_worker(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    import asyncio

    import redis
    import redis.asyncio as aredis

    from alerts.detection.engine import BrandState
    from alerts.detection.rule_check import AlertEvent
    from alerts.detection.store import DetectionStore
    from socialpulse.app.settings import load_settings
    from socialpulse.core.redis_keys import RedisKeys

    settings = load_settings(
        write_config(
            tmp_path / "config", run_id, brands=BRANDS, rules=RULES, alerts={"incidents": INCIDENTS}
        )
    )
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    fired = AlertEvent(
        "fired",
        "negatives_high",
        "threshold",
        "critical",
        "acme",
        "x",
        "mentions_negative",
        60,
        time.time(),
        9,
        None,
        9,
        time.time() - 20,
    )

    async def record() -> None:
        client = aredis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        await DetectionStore(client, keys).save("acme", BrandState(cursor=fired.at), [fired])
        await client.aclose()

    asyncio.run(record())  # a firing no worker has turned into an incident yet
    # With no worker running, the CLI does the incident round itself.
    done = run_cli(settings, "incidents", "ack", "acme-1", "--as", "alice", "--why", "on it")
    assert (done.returncode, done.stdout.strip()) == (0, "acme-1 acknowledged by alice (CLI)")
    listed = run_cli(settings, "incidents", "list").stdout.splitlines()
    columns = listed[1].split()
    assert (columns[:3], columns[5]) == (["acme-1", "acknowledged", "critical"], "1")
    assert listed[1].endswith(
        "x: mentions_negative 9 in the last 1m (threshold rule negatives_high)"
    )
    shown = incident(settings, "acme-1")
    assert [(e["who"], e["action"], e["why"]) for e in shown["timeline"]] == [
        (
            "socialpulse",
            "opened",
            "mentions_negative 9 in the last 1m (threshold rule negatives_high)",
        ),
        ("alice (CLI)", "acknowledged", "on it"),
    ]
    snoozed = run_cli(settings, "incidents", "snooze", "acme-1", "2h", "--as", "bob")
    assert snoozed.stdout.strip() == "acme-1 snoozed for 2h by bob (CLI)"
    again = run_cli(settings, "incidents", "resolve", "acme-9")
    assert (again.returncode, again.stderr.strip()) == (
        2,
        "socialpulse incidents: no incident acme-9",
    )
    # The Slack notices wait, in order, in the outbox for a worker: post, then the two changes.
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    outbox = client.xrange(f"{keys.prefix}:{{acme}}:outbox")
    kinds = [json.loads(fields["item"])["kind"] for _, fields in outbox]
    assert kinds == ["post", "update", "reply", "update", "reply"]
