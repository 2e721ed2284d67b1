"""Silences and verdicts end to end on the real stack (Kafka, worker, Redis, the Slack stub):
a silence made with a signed ``/socialpulse`` slash command keeps a crisis from posting while
its firing is recorded on the timeline and /metrics; the channel is told once before it ends;
when it ends with the crisis still on, the incident opens then. Verdicts from signed clicks
(buttons and the reason menu) reach /metrics exactly, and the CLI and the export agree."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import redis

from alerts.incidents.verdict_labels import read_verdicts
from socialpulse.app.settings import Settings
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys
from tests.conftest import Worker, run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import metrics, stub_messages, wait_until
from tests.e2e.helpers.slack import click, command, incident

RESPONDER = "U0SOCIAL1"
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
SILENCE_FOR = 40  # seconds
NOTIFY_BEFORE = 30  # seconds: told 10 s after it is made


def start(tmp_path: Path, run_id: str) -> Worker:
    alerts = {
        "incidents": {"responders": [RESPONDER, "U0SOCIAL2"], "auto_resolve_after": "10m"},
        "silences": {"notify_before": f"{NOTIFY_BEFORE}s", "max_duration": "1d"},
    }
    config = write_config(tmp_path / "config", run_id, brands=BRANDS, rules=RULES, alerts=alerts)
    return start_worker(config, tmp_path / "worker.log")


def burst(settings: Settings, platform: str, n: int = 6) -> None:
    posts = [mention("acme", platform, "Charged twice, awful", "negative") for _ in range(n)]
    produce(settings, settings.pipeline.topics.mentions, posts)


def shown(settings: Settings, incident_id: str) -> dict[str, Any] | None:
    """The incident as ``socialpulse incidents show`` gives it, or None before it exists."""
    done = run_cli(settings, "incidents", "show", incident_id, "--format", "json")
    return dict(json.loads(done.stdout)) if done.returncode == 0 else None


def sample(worker: Worker, name: str, **labels: str) -> float | None:
    return metrics(worker.metrics_url).get((name, frozenset(labels.items())))


def test_a_silence_from_slack_holds_a_crisis_then_it_opens_when_the_silence_ends(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    worker = start(tmp_path, run_id)
    settings = worker.settings
    channel = settings.alerts.slack.channel
    try:
        # Refused, and nothing made: unsigned, someone who is not a responder, a bad matcher.
        text = f'silence brand=acme rule=negatives_high for={SILENCE_FOR}s why="product launch"'
        assert command(settings, text, user=RESPONDER, sign=False)[0] == 401
        assert command(settings, text, user="U0INTERN") == (
            200,
            {
                "response_type": "ephemeral",
                "text": "Only the on-call responders (alerts.yaml: incidents.responders) may "
                "make or expire silences.",
            },
        )
        assert command(settings, "silence brand=nope for=1h why=x", user=RESPONDER) == (
            200,
            {
                "response_type": "ephemeral",
                "text": "Not done: brands: nope is not one of the configured brands: acme",
            },
        )
        assert command(settings, "silences", user=RESPONDER)[1]["text"] == (
            "No silences in force or coming."
        )

        status, reply = command(settings, text, user=RESPONDER)
        made = json.loads(run_cli(settings, "silences", "list", "--format", "json").stdout)
        assert status == 200 and made["id"] == "s-1" and made["state"] == "active"
        start_at, end_at = int(made["starts_at"]), int(made["ends_at"])
        assert end_at - start_at == SILENCE_FOR
        assert (made["brands"], made["rules"], made["created_by"], made["channel"]) == (
            ["acme"],
            ["negatives_high"],
            RESPONDER,
            channel,
        )
        assert reply == {
            "response_type": "in_channel",
            "text": f":mute: Silence `s-1` by <@{RESPONDER}>: brand=acme rule=negatives_high, "
            f"from <!date^{start_at}^{{date_short_pretty}} {{time}}|{start_at}> to "
            f"<!date^{end_at}^{{date_short_pretty}} {{time}}|{end_at}>: product launch. "
            "Firings it matches are recorded, not notified.",
        }

        # The crisis: evaluated and recorded, nobody paged.
        burst(settings, "x")
        held = wait_until(
            lambda: (i := shown(settings, "acme-1")) and i["state"] == "silenced" and i,
            timeout=40,
            what="the silenced incident",
        )
        assert (held["silenced_by"], held["notified_at"], held["firing_rules"]) == (
            "s-1",
            None,
            ["negatives_high"],
        )
        assert [(e["who"], e["action"], e["why"]) for e in held["timeline"]] == [
            (
                "socialpulse",
                "fired, silenced by s-1",
                "mentions_negative 6 in the last 1m (threshold rule negatives_high)",
            ),
            (
                "socialpulse",
                "not notified",
                f"silence s-1 (brand=acme rule=negatives_high) by {RESPONDER}: product launch",
            ),
        ]
        # The evaluation process relays its counters every few seconds.
        wait_until(
            lambda: (
                sample(
                    worker,
                    "socialpulse_alert_silenced_firings_total",
                    brand="acme",
                    rule="negatives_high",
                )
                == 1
            ),
            timeout=15,
            what="the silenced firing counted on /metrics",
        )
        assert (
            sample(
                worker, "socialpulse_incidents", brand="acme", state="silenced", severity="critical"
            )
            == 1
        )
        # Nothing queued for Slack, let alone sent: no notice waits in the outbox, no message.
        keys = IncidentKeys(RedisKeys(settings.pipeline.redis.key_prefix), "acme")
        with redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True) as client:
            assert (client.xlen(keys.outbox), client.hgetall(keys.slack)) == (0, {})
        assert stub_messages(settings) == []

        # Told once, NOTIFY_BEFORE seconds before it ends, in the channel it was made in.
        notices = wait_until(
            lambda: [m for m in stub_messages(settings) if "Silence `s-1`" in m.get("text", "")],
            timeout=SILENCE_FOR,
            what="the expiry notice",
        )
        assert notices[0]["text"] == (
            f":hourglass_flowing_sand: Silence `s-1` (brand=acme rule=negatives_high) ends "
            f"<!date^{end_at}^{{date_short_pretty}} {{time}}|{end_at}>. Made by <@{RESPONDER}>: "
            "product launch\nStill firing under it, and notified when it ends: `acme-1`.\n"
            "To keep it longer, make a new one: `/socialpulse silence brand=acme "
            "rule=negatives_high for=2h why=...`"
        )
        assert end_at - NOTIFY_BEFORE - 1 <= notices[0]["received_at"] < end_at

        # It ends with the crisis still on (the burst is in the 1-minute window): it opens now.
        post = wait_until(
            lambda: [m for m in stub_messages(settings) if "[CRITICAL]" in m.get("text", "")],
            timeout=SILENCE_FOR,
            what="the incident opening when the silence ended",
        )[0]
        assert post["received_at"] >= end_at
        assert post["text"] == (
            "[CRITICAL] Acme Coffee (acme) on x: mentions_negative 6 in the last 1m "
            "(threshold rule negatives_high)"
        )
        opened = incident(settings, "acme-1")
        assert opened["state"] == "triggered" and opened["notified_at"] >= end_at
        assert [(e["action"], e["why"]) for e in opened["timeline"][2:]] == [
            ("opened", "silence s-1 ended while negatives_high still fired"),
        ]
        held_note = next(b for b in post["blocks"] if "held it from" in json.dumps(b))
        assert "Silence `s-1` held it from" in held_note["elements"][0]["text"]
        time.sleep(3)  # the notice stays one
        texts = [m.get("text", "") for m in stub_messages(settings)]
        assert sum("Silence `s-1`" in t for t in texts) == 1
        wait_until(
            lambda: (
                sample(
                    worker, "socialpulse_incidents_opened_total", brand="acme", severity="critical"
                )
                == 1
            ),
            timeout=15,
            what="the incident counted as opened when the silence ended",
        )

        # Made and expired early from Slack: the listing and the reply say so.
        status, reply = command(
            settings, "silence platform=instagram for=2h bot wave expected", user="U0SOCIAL2"
        )
        assert status == 200 and reply["text"].startswith(
            ":mute: Silence `s-2` by <@U0SOCIAL2>: platform=instagram, from"
        )
        assert command(settings, "silences", user=RESPONDER)[1]["text"].startswith(
            "`s-2` active: platform=instagram, until <!date^"
        )
        assert command(settings, "expire s-2", user=RESPONDER) == (
            200,
            {
                "response_type": "in_channel",
                "text": f"Silence `s-2` (platform=instagram) expired by <@{RESPONDER}>; what "
                "still fires under it opens now.",
            },
        )
        assert command(settings, "expire s-2", user=RESPONDER)[1] == {
            "response_type": "ephemeral",
            "text": "Not done: silence s-2 has already ended",
        }
        ended = run_cli(settings, "silences", "list", "--all", "--format", "json").stdout
        states = {
            s["id"]: (s["state"], s["expired_by"]) for s in map(json.loads, ended.splitlines())
        }
        assert states == {"s-1": ("expired", None), "s-2": ("expired", RESPONDER)}
    finally:
        stop_worker(worker)


def verdicts(worker: Worker) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["rule"], dict(labels).get("verdict", "ratio")): value
        for (name, labels), value in metrics(worker.metrics_url).items()
        if name in ("socialpulse_alert_verdicts", "socialpulse_alert_useful_ratio")
        and dict(labels)["brand"] == "acme"
    }


def test_verdicts_from_signed_clicks_reach_metrics_exactly(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    worker = start(tmp_path, run_id)
    settings = worker.settings
    try:
        assert verdicts(worker) == {
            ("negatives_high", "useful"): 0,
            ("negatives_high", "not_useful"): 0,
        }
        burst(settings, "x")
        burst(settings, "instagram")
        posts = wait_until(
            lambda: (
                len(m := [p for p in stub_messages(settings) if "[CRITICAL]" in p["text"]]) == 2
                and m
            ),
            timeout=40,
            what="two incidents",
        )
        judge = next(b for b in posts[0]["blocks"] if b.get("block_id", "").startswith("verdict:"))
        assert [e["action_id"] for e in judge["elements"]] == [
            "verdict_useful",
            "verdict_not_useful",
            "verdict_reason",
        ]
        assert [o["value"] for o in judge["elements"][2]["options"]] == [
            f"{judge['block_id'].removeprefix('verdict:')}|{r}"
            for r in ("expected_event", "bot_wave", "data_problem", "too_sensitive")
        ]

        assert click(settings, user=RESPONDER, action_id="verdict_useful", value="acme-1") == 200
        assert click(settings, user=RESPONDER, selected="acme-2|bot_wave") == 200
        # Refused, changing nothing: someone else, a forged one, a reason not offered.
        assert click(settings, user="U0INTERN", action_id="verdict_useful", value="acme-2") == 200
        assert click(settings, user=RESPONDER, action_id="verdict_useful", value="acme-2",
                     sign="wrong") == 401  # fmt: skip
        assert click(settings, user=RESPONDER, selected="acme-2|boring") == 400
        wait_until(
            lambda: (
                verdicts(worker)
                == {
                    ("negatives_high", "useful"): 1,
                    ("negatives_high", "not_useful"): 1,
                    ("negatives_high", "ratio"): 0.5,
                }
            ),
            timeout=20,
            what="one useful and one not useful verdict on /metrics",
        )
        first = incident(settings, "acme-2")
        assert (first["verdict"], first["verdict_reason"], first["verdict_by"]) == (
            "not_useful",
            "bot_wave",
            RESPONDER,
        )
        assert ("verdict: not useful (bot wave)", RESPONDER) in [
            (e["action"], e["who"]) for e in first["timeline"]
        ]
        [post_2] = [p for p in posts if '"verdict:acme-2"' in json.dumps(p["blocks"])]
        wait_until(
            lambda: [
                m
                for m in stub_messages(settings)
                if m["method"] == "chat.update"
                and m["ts"] == post_2["ts"]
                and "*Verdict*: not useful (bot wave), by <@U0SOCIAL1>" in json.dumps(m["blocks"])
            ],
            what="acme-2's message showing its verdict",
        )

        # The team changes its mind on acme-2 from the CLI: the last verdict stands.
        done = run_cli(settings, "incidents", "verdict", "acme-2", "useful", "--as", "alice")
        assert (done.returncode, done.stdout) == (0, "acme-2 marked useful by alice (CLI)\n")
        again = run_cli(settings, "incidents", "verdict", "acme-2", "useful", "--as", "bob")
        assert (again.returncode, again.stderr) == (
            1,
            "socialpulse incidents: refused: incident acme-2 is already marked useful by "
            "alice (CLI)\n",
        )
        wait_until(
            lambda: (
                verdicts(worker)
                == {
                    ("negatives_high", "useful"): 2,
                    ("negatives_high", "not_useful"): 0,
                    ("negatives_high", "ratio"): 1.0,
                }
            ),
            timeout=20,
            what="two useful verdicts on /metrics",
        )
        exported = run_cli(settings, "incidents", "verdicts")
        lines = sorted(map(json.loads, exported.stdout.splitlines()), key=lambda x: x["incident"])
        platforms = [incident(settings, i)["platform"] for i in ("acme-1", "acme-2")]
        assert [(x["incident"], x["verdict"], x["by"], x["platform"]) for x in lines] == [
            ("acme-1", "useful", RESPONDER, platforms[0]),
            ("acme-2", "useful", "alice (CLI)", platforms[1]),
        ]
        assert sorted(platforms) == ["instagram", "x"]
        # ... in the form `socialpulse backtest --verdicts` reads as labels.
        labels = read_verdicts(Path("verdicts.jsonl"), io.StringIO(exported.stdout))
        assert sorted((v.incident, v.verdict, v.rule) for v in labels) == [
            ("acme-1", "useful", "negatives_high"),
            ("acme-2", "useful", "negatives_high"),
        ]
        outcomes = {
            dict(labels)["outcome"]: v
            for (name, labels), v in metrics(worker.metrics_url).items()
            if name == "socialpulse_slack_interactions_total" and v
        }
        assert outcomes == {"accepted": 2, "not_responder": 1, "forged": 1, "bad_request": 1}
    finally:
        stop_worker(worker)
