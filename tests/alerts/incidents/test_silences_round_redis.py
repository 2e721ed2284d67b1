"""Silences, verdicts, the end-of-silence notice and the weekly summary, round by round on the
real Redis (fixed clock): what is stored, what is queued for Slack, and what /metrics counts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from alerts.detection.rule_check import AlertEvent
from alerts.incidents.metrics import IncidentCounts
from alerts.incidents.round import IncidentManager
from alerts.incidents.store import ActionRequest, IncidentStore
from alerts.notify.silence_notices import tell_expiring
from alerts.notify.slack_message import incident_message
from alerts.notify.weekly_post import WeeklySummaries
from alerts.silences.model import Known, Silence, expiring, new_silence
from alerts.silences.store import KEEP_SECONDS, SilenceStore
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys
from tests.conftest import write_config

# Tuesday 2026-12-01 10:00 UTC.
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


def firing(rule: str, severity: str, at: float, event: str = "fired", platform: str = "x"):  # type: ignore[no-untyped-def]
    return AlertEvent(
        event,  # type: ignore[arg-type]
        rule,
        "deviation",
        severity,
        "acme",
        platform,
        "mentions",
        900,
        at,
        900.0,
        300.0,
        12.0,
        at - 60,
    )


@dataclass
class Rig:
    settings: Settings
    keys: RedisKeys
    sync: redis.Redis
    silences: SilenceStore

    @property
    def k(self) -> IncidentKeys:
        return IncidentKeys(self.keys, "acme")

    def add(self, event: AlertEvent) -> None:
        self.sync.xadd(self.keys.alert_events("acme"), {"event": json.dumps(event.to_dict())})

    def outbox(self) -> list[dict[str, Any]]:
        return [json.loads(f["item"]) for _, f in self.sync.xrange(self.k.outbox)]

    def incident(self, incident_id: str) -> dict[str, Any]:
        return dict(json.loads(self.sync.get(self.k.incident(incident_id)) or "{}"))

    def timeline(self, incident_id: str) -> list[tuple[str, str, str]]:
        raw = self.sync.lrange(self.k.timeline(incident_id), 0, -1)
        return [(e["who"], e["action"], e["why"]) for e in map(json.loads, raw)]

    def silence(self, now: float, length: float, **matchers: list[str]) -> Silence:
        known = Known(
            brands={b.id: tuple(b.platforms) for b in self.settings.brands.brands},
            rules={r.name: r.severity for r in self.settings.alerts.rules},
        )
        made = new_silence(
            "", matchers, now, now + length, "U0SOCIAL1", "launch", now, "slack", known, 86400
        )
        return self.silences.add(made)

    def round_at(self, now: float, request: ActionRequest | None = None) -> None:
        async def run() -> None:
            client = aredis.Redis.from_url(self.settings.pipeline.redis.url, decode_responses=True)
            try:
                store = IncidentStore(client, self.keys)
                if request is not None:
                    await store.request("acme", request)
                manager = IncidentManager(self.settings, store, incident_message)
                current = self.silences.current(self.settings.alerts.silences, now)
                await manager.round("acme", now, silences=current)
            finally:
                await client.aclose()

        asyncio.run(run())


@pytest.fixture
def rig(stack: Settings, tmp_path: Path, run_id: str) -> Iterator[Rig]:
    folder = write_config(
        tmp_path / "config",
        run_id,
        brands=[{"id": "acme", "name": "Acme Coffee", "platforms": ["x", "instagram"]}],
        also_rules=("negative_spike", "mention_volume_surge"),
    )
    settings = load_settings(folder)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    sync = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    yield Rig(settings, keys, sync, SilenceStore(sync, keys))
    sync.close()


def test_a_silenced_firing_is_recorded_unsent_and_opens_when_the_silence_ends(rig: Rig) -> None:
    rig.silence(T0, 600, rules=["mention_volume_surge"])
    rig.add(firing("mention_volume_surge", "warning", T0 + 10))
    rig.round_at(T0 + 11)
    assert rig.outbox() == []
    held = rig.incident("acme-1")
    assert (held["state"], held["silenced_by"], held["notified_at"]) == ("silenced", "s-1", None)
    assert rig.timeline("acme-1") == [
        (
            "socialpulse",
            "fired, silenced by s-1",
            "mentions 900 in the last 15m, baseline 300, +12.0 spreads",
        ),
        (
            "socialpulse",
            "not notified",
            "silence s-1 (rule=mention_volume_surge) by U0SOCIAL1: launch",
        ),
    ]
    # Fires again under the silence: on the timeline, still nothing sent; an ack is refused.
    rig.add(firing("mention_volume_surge", "warning", T0 + 70))
    rig.round_at(T0 + 71, ActionRequest("acme-1", "ack", "U0SOCIAL1"))
    assert [i["kind"] for i in rig.outbox()] == ["ephemeral"]
    assert rig.outbox()[0]["text"] == (
        "Not done: incident acme-1 is silenced by s-1: nobody was notified; expire the silence "
        "to open it, or resolve it."
    )
    assert rig.incident("acme-1")["firings"] == 2
    # The silence ends, the rule still fires: it opens now, posted.
    rig.round_at(T0 + 600)
    assert [i["kind"] for i in rig.outbox()] == ["ephemeral", "post"]
    opened = rig.incident("acme-1")
    assert (opened["state"], opened["notified_at"]) == ("triggered", T0 + 600)
    assert rig.timeline("acme-1")[-1] == (
        "socialpulse",
        "opened",
        "silence s-1 ended while mention_volume_surge still fired",
    )


def test_a_silenced_incident_that_clears_resolves_unsent(rig: Rig) -> None:
    rig.silence(T0, 3600, brands=["acme"])
    rig.add(firing("negative_spike", "critical", T0 + 10))
    rig.round_at(T0 + 11)
    rig.add(firing("negative_spike", "critical", T0 + 100, event="cleared"))
    rig.round_at(T0 + 101)
    rig.round_at(T0 + 101 + rig.settings.alerts.incidents.auto_resolve_after)
    assert rig.outbox() == []
    assert rig.incident("acme-1")["state"] == "resolved"
    assert [a for _, a, _ in rig.timeline("acme-1")] == [
        "fired, silenced by s-1",
        "not notified",
        "rule cleared",
        "resolved",
    ]


def test_a_firing_no_silence_covers_opens_the_silenced_incident(rig: Rig) -> None:
    rig.silence(T0, 3600, severities=["warning"])
    rig.add(firing("mention_volume_surge", "warning", T0 + 10))
    rig.round_at(T0 + 11)
    rig.add(firing("negative_spike", "critical", T0 + 20))  # the same surge, not silenced
    rig.round_at(T0 + 21)
    assert [i["kind"] for i in rig.outbox()] == ["post", "update", "reply"]
    assert rig.outbox()[2]["text"].startswith("Severity rose to critical (firing 2): ")
    assert rig.incident("acme-1")["state"] == "triggered"
    # An expired silence holds nothing: the next surge (another platform) notifies at once.
    rig.silences.expire("s-1", "U0SOCIAL2", T0 + 30, rig.settings.alerts.silences)
    rig.add(firing("mention_volume_surge", "warning", T0 + 40, platform="instagram"))
    rig.round_at(T0 + 41)
    assert rig.incident("acme-2")["state"] == "triggered"


def test_verdicts_are_stored_with_the_incident_and_counted_exactly(rig: Rig) -> None:
    rig.add(firing("negative_spike", "critical", T0))
    rig.add(firing("mention_volume_surge", "warning", T0, platform="instagram"))
    rig.round_at(T0 + 1)
    useful = ActionRequest("acme-1", "verdict", "U0SOCIAL1", verdict="useful")
    rig.round_at(T0 + 2, useful)
    noise = ActionRequest("acme-2", "verdict", "U0SOCIAL1", verdict="not_useful", reason="bot_wave")
    rig.round_at(T0 + 3, noise)
    bad = ActionRequest("acme-2", "verdict", "U0SOCIAL1", verdict="meh")
    rig.round_at(T0 + 4, bad)
    stored = rig.incident("acme-2")
    assert (stored["verdict"], stored["verdict_reason"], stored["verdict_at"]) == (
        "not_useful",
        "bot_wave",
        T0 + 3,
    )
    assert rig.sync.hgetall(rig.k.verdict_of) == {
        "acme-1": "negative_spike\tuseful\t",
        "acme-2": "mention_volume_surge\tnot_useful\tbot_wave",
    }
    refused = [i for i in rig.outbox() if i["kind"] == "ephemeral"]
    assert [i["text"] for i in refused] == [
        "Not done: verdict 'meh' is not one of useful, not_useful."
    ]
    rules = [r.name for r in rig.settings.alerts.rules]
    counts = IncidentCounts(lambda: ["acme"], rig.keys, rig.sync, rules, clock=lambda: T0 + 5)
    families = {f.name: {tuple(v): n for v, n in f.samples} for f in counts()}
    assert families["socialpulse_alert_verdicts"] == {
        ("acme", rule, verdict): float(
            (rule, verdict)
            in {("negative_spike", "useful"), ("mention_volume_surge", "not_useful")}
        )
        for rule in rules
        for verdict in ("useful", "not_useful")
    }
    assert families["socialpulse_alert_useful_ratio"] == {
        ("acme", "negative_spike"): 1.0,
        ("acme", "mention_volume_surge"): 0.0,
    }
    # 31 days on, they are outside the 30 days.
    later = IncidentCounts(
        lambda: ["acme"], rig.keys, rig.sync, rules, clock=lambda: T0 + 31 * 86400
    )
    assert {f.name: len(f.samples) for f in later()}["socialpulse_alert_useful_ratio"] == 0


def test_the_end_of_a_silence_is_told_once(rig: Rig) -> None:
    silence = rig.silence(T0, 1200, brands=["acme"], rules=["negative_spike"])
    rig.add(firing("negative_spike", "critical", T0 + 10))
    rig.round_at(T0 + 11)
    settings = rig.settings

    async def tell(now: float) -> int:
        client = aredis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
        try:
            current = rig.silences.current(settings.alerts.silences, now)
            return await tell_expiring(
                rig.silences,
                IncidentStore(client, rig.keys),
                expiring(current, now, settings.alerts.silences.notify_before),
                settings.brand_ids,
                settings.alerts.incidents,
                settings.alerts.slack.channel,
                now,
            )
        finally:
            await client.aclose()

    assert asyncio.run(tell(T0 + 1200 - 901)) == 0  # not yet: 15 minutes before its end
    assert [asyncio.run(tell(T0 + 1200 - 900 + n)) for n in range(3)] == [1, 0, 0]
    [notice] = rig.outbox()
    assert (notice["kind"], notice["channel"]) == ("message", settings.alerts.slack.channel)
    end = int(silence.end)
    assert notice["text"] == (
        f":hourglass_flowing_sand: Silence `s-1` (brand=acme rule=negative_spike) ends "
        f"<!date^{end}^{{date_short_pretty}} {{time}}|{end}>. Made by <@U0SOCIAL1>: launch\n"
        "Still firing under it, and notified when it ends: `acme-1`.\n"
        "To keep it longer, make a new one: `/socialpulse silence brand=acme "
        "rule=negative_spike for=2h why=...`"
    )


def test_the_weekly_summary_is_posted_once_to_the_brands_channel(rig: Rig) -> None:
    config = rig.settings.alerts.incidents.weekly_summary
    assert config is not None
    due = config.last_due(T0 + 7 * 86400)  # the Monday 09:00 Berlin after T0
    assert datetime.fromtimestamp(due, UTC).isoformat() == "2026-12-07T08:00:00+00:00"
    rig.add(firing("negative_spike", "critical", T0))
    rig.round_at(T0 + 1)
    rig.round_at(T0 + 61, ActionRequest("acme-1", "ack", "U0SOCIAL1"))
    rig.round_at(T0 + 3600, ActionRequest("acme-1", "resolve", "U0SOCIAL1"))
    rig.round_at(T0 + 3601, ActionRequest("acme-1", "verdict", "U0SOCIAL1", verdict="useful"))
    before = len(rig.outbox())

    async def post(now: float) -> int:
        client = aredis.Redis.from_url(rig.settings.pipeline.redis.url, decode_responses=True)
        try:
            summaries = WeeklySummaries(rig.settings, IncidentStore(client, rig.keys), rig.silences)
            return await summaries.post_due(now)
        finally:
            await client.aclose()

    assert asyncio.run(post(due - 1)) == 0  # the week before has nothing for acme
    assert [asyncio.run(post(due + n)) for n in (0, 5)] == [1, 0]
    assert asyncio.run(post(due + 86401 + 7 * 86400)) == 0  # over a day late: skipped
    [summary] = rig.outbox()[before:]
    assert (summary["kind"], summary["channel"]) == ("message", rig.settings.alerts.slack.channel)
    start, end = int(due - 7 * 86400), int(due)
    assert summary["text"] == (
        f"*Weekly summary for Acme Coffee (acme)*, <!date^{start}^{{date_short}}|"
        f"2026-11-30T08:00:00Z> to <!date^{end}^{{date_short}}|2026-12-07T08:00:00Z>\n"
        "*Incidents:* 1 opened, 1 notified (1 critical); none silenced.\n"
        "*Time to acknowledge:* median 1m, longest 1m (1 acknowledged).\n"
        "*Time to resolve:* median 3599s, longest 3599s (1 resolved).\n"
        "*Useful:* 100% (1 useful, 0 not useful).\n"
        "*Noisiest rules:* negative_spike (1 incident, 1 firing).\n"
        "No silences used.\n"
        # Three budgets a severity: x, instagram and both together (all).
        "*Notification budget:* critical 1 of 3, warning 0 of 3, info 0 of 3.\n"
        "No rule below the 50% useful floor (30 days, at least 3 verdicts)."
    )


def test_ended_silences_and_their_notice_marks_are_dropped_after_35_days(rig: Rig) -> None:
    ended = rig.silence(T0, 600, brands=["acme"])
    kept = rig.silence(T0 + 30 * 86400, 600, brands=["acme"])
    assert rig.silences.mark_told(ended.id, T0 + 1)
    assert not rig.silences.mark_told(ended.id, T0 + 2)  # told once
    assert rig.silences.prune(T0 + 600 + KEEP_SECONDS - 1) == 0
    assert rig.silences.prune(T0 + 600 + KEEP_SECONDS + 1) == 1
    assert [s.id for s in rig.silences.stored()] == [kept.id]
    assert rig.sync.hgetall(rig.keys.silence_notices()) == {}


def test_a_verdict_on_a_resolved_incident_keeps_the_newer_open_one(rig: Rig) -> None:
    rig.add(firing("negative_spike", "critical", T0))
    rig.round_at(T0 + 1)
    rig.round_at(T0 + 2, ActionRequest("acme-1", "resolve", "U0SOCIAL1"))
    rig.add(firing("negative_spike", "critical", T0 + 60))
    rig.round_at(T0 + 61)
    channel = rig.settings.alerts.slack.channel
    assert rig.sync.hgetall(rig.k.open) == {f"x|{channel}": "acme-2"}
    rig.round_at(T0 + 62, ActionRequest("acme-1", "verdict", "U0SOCIAL1", verdict="useful"))
    rig.round_at(T0 + 63, ActionRequest("acme-1", "ack", "U0SOCIAL1"))  # refused: resolved
    assert rig.incident("acme-1")["verdict"] == "useful"
    assert rig.sync.hgetall(rig.k.open) == {f"x|{channel}": "acme-2"}


def test_a_silence_made_after_the_page_quiets_its_thread_and_escalation(rig: Rig) -> None:
    escalation = [{"after": "5m", "notify": "<!subteam^S0ONCALL>"}]
    incidents = rig.settings.alerts.incidents.model_validate(
        rig.settings.alerts.incidents.model_dump() | {"escalation": escalation}
    )
    rig.settings = rig.settings.model_copy(
        update={"alerts": rig.settings.alerts.model_copy(update={"incidents": incidents})}
    )
    rig.add(firing("mention_volume_surge", "warning", T0))
    rig.round_at(T0 + 1)
    assert [i["kind"] for i in rig.outbox()] == ["post"]
    rig.silence(T0 + 10, 3600, brands=["acme"])
    rig.round_at(T0 + 11)
    rig.add(firing("negative_spike", "critical", T0 + 20))  # joins, under the silence
    rig.round_at(T0 + 21)
    rig.round_at(T0 + 400)  # past the 5m escalation: it waits
    assert [i["kind"] for i in rig.outbox()] == ["post", "update"]
    assert [a for _, a, _ in rig.timeline("acme-1")] == [
        "opened",
        "quiet under s-1",
        "severity rose",
        "not notified",
    ]
    assert rig.incident("acme-1")["muted_by"] == "s-1"
    rig.silences.expire("s-1", "U0SOCIAL1", T0 + 500, rig.settings.alerts.silences)
    rig.round_at(T0 + 501)
    rig.round_at(T0 + 501 + 299)
    assert [i["kind"] for i in rig.outbox()] == ["post", "update"]  # 5 minutes from its end
    rig.round_at(T0 + 501 + 300)
    assert [i["kind"] for i in rig.outbox()] == ["post", "update", "reply"]
    assert rig.outbox()[-1]["text"] == (
        "<!subteam^S0ONCALL> escalation: not acknowledged after 5m."
    )
    assert rig.timeline("acme-1")[4] == ("socialpulse", "s-1 over", "escalation goes on from now")


def test_a_silence_made_to_extend_another_holds_the_incident_on(rig: Rig) -> None:
    rig.silence(T0, 1200, rules=["negative_spike"])
    rig.add(firing("negative_spike", "critical", T0 + 10))
    rig.round_at(T0 + 11)
    rig.silence(T0 + 600, 3600, brands=["acme"])  # s-2, made before s-1 ends
    rig.round_at(T0 + 601)
    rig.round_at(T0 + 1200)  # s-1 ends: s-2 holds it
    assert rig.outbox() == []
    held = rig.incident("acme-1")
    assert (held["state"], held["silenced_by"]) == ("silenced", "s-2")
    assert rig.timeline("acme-1")[-1] == (
        "socialpulse",
        "held by s-2",
        "silence s-2 (brand=acme) by U0SOCIAL1: launch",
    )


def test_two_evaluators_telling_at_once_tell_once(rig: Rig) -> None:
    rig.silence(T0, 600, brands=["acme"])
    settings = rig.settings

    def tell() -> int:
        async def run() -> int:
            client = aredis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
            try:
                current = rig.silences.current(settings.alerts.silences, T0 + 1)
                return await tell_expiring(
                    rig.silences,
                    IncidentStore(client, rig.keys),
                    expiring(current, T0 + 1, settings.alerts.silences.notify_before),
                    settings.brand_ids,
                    settings.alerts.incidents,
                    settings.alerts.slack.channel,
                    T0 + 1,
                )
            finally:
                await client.aclose()

        return asyncio.run(run())

    with ThreadPoolExecutor(8) as pool:
        told = list(pool.map(lambda _: tell(), range(8)))
    assert sorted(told) == [0] * 7 + [1]
    assert [i["kind"] for i in rig.outbox()] == ["message"]
