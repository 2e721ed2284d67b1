"""The simulator's mix, languages, bots, daily rhythm and scenarios (pure: no Kafka)."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime

import pytest

from socialpulse.app.settings import load_settings
from socialpulse.core.config import Brand
from socialpulse.core.paths import project_home
from socialpulse.devtools.scenarios import SCENARIOS, Scenario, activity
from socialpulse.devtools.sim_texts import PRODUCTS, TEXTS, always_labelled
from socialpulse.devtools.simulate import Simulator, events
from streams.events import Interaction, Mention
from streams.sentiment import score_text

PLATFORMS = ["x", "instagram", "facebook", "linkedin", "tiktok", "youtube", "weibo", "wechat",
             "douyin", "xiaohongshu"]  # fmt: skip
BRANDS = [
    Brand(id="acme", name="Acme", platforms=PLATFORMS, competitors=["brewco"]),
    Brand(id="brewco", name="BrewCo", platforms=["x", "weibo"]),
]


def tone_of(text: str) -> str:
    """Which tone's template a text was made from."""
    for by_tone in TEXTS.values():
        for tone, templates in by_tone.items():
            for template in templates:
                pattern = re.escape(template).replace(r"\{brand\}", ".+")
                if re.fullmatch(pattern.replace(r"\{product\}", ".+"), text):
                    return tone
    raise AssertionError(f"no template makes {text!r}")


def sample(sim: Simulator, n: int) -> list[tuple[str, dict]]:
    stream = events(sim)
    return [next(stream) for _ in range(n)]


def test_every_event_is_valid_and_languages_follow_the_platform() -> None:
    made = sample(Simulator(BRANDS, random.Random(1)), 6000)
    for kind, event in made:
        (Mention if kind == "mention" else Interaction).model_validate(event)
    mentions = [e for k, e in made if k == "mention" and not e.get("from_brand")]
    chinese = {e["lang"] for e in mentions if e["platform"] in ("weibo", "douyin", "wechat")}
    assert chinese == {"zh"}
    western = Counter(e["lang"] for e in mentions if e["platform"] == "x")
    assert set(western) == {"en", "de", "es", "fr", "pt", "ja"}
    assert western.most_common(1)[0][0] == "en"
    # Languages not scored in-house always carry the source's label.
    assert all("sentiment" in e for e in mentions if e["lang"] not in ("en", "zh"))
    bots = sum(1 for e in mentions if e.get("is_bot"))
    assert 0.015 < bots / len(mentions) < 0.05
    assert {e["platform"] for _, e in made} == set(PLATFORMS)
    interactions = [e for k, e in made if k == "interaction"]
    kinds = Counter(e["kind"] for e in interactions)
    assert {"comment", "conversion", "order", "delivered", "landing_visit"} <= set(kinds)
    # Nothing per viewer: impressions, likes, shares, clicks and spend come in snapshots.
    assert not {"impression", "like", "share", "save", "click", "spend"} & set(kinds)
    assert kinds["comment"] > kinds["landing_visit"] > kinds["follow"] > kinds["order"]
    # Batching sources say how many an event stands for; valued kinds are one each.
    batched = {e["kind"] for e in interactions if e.get("count", 1) > 1}
    assert batched == {"follow", "unfollow", "delivered", "open", "landing_visit"}
    assert min(e["count"] for e in interactions if e["kind"] == "delivered") >= 1_000


def test_activity_follows_the_day_and_the_week() -> None:
    day = [activity(datetime(2026, 11, 30, h, 0)) for h in range(24)]  # a Monday
    assert sum(day) / 24 == pytest.approx(1.0, abs=0.01)
    assert max(day[2:5]) < 0.3 < 1.4 < day[20]
    assert activity(datetime(2026, 11, 29, 20, 0)) == pytest.approx(0.8 * day[20])  # Sunday


def test_crisis_turns_the_brand_negative_and_leaves_others_alone() -> None:
    crisis = Scenario("crisis", "acme", "x", start=10)
    sim = Simulator(BRANDS, random.Random(2), scenario=crisis)
    sim.elapsed = 5  # not yet
    before = [sim.mention(BRANDS[0], "x") for _ in range(800)]
    sim.elapsed = 11
    during = [sim.mention(BRANDS[0], "x") for _ in range(800)]
    elsewhere = [sim.mention(BRANDS[0], "instagram") for _ in range(800)]
    other = [sim.mention(BRANDS[1], "x") for _ in range(800)]

    def negative(ms: list[dict]) -> float:
        return sum(1 for m in ms if tone_of(m["text"]) == "negative") / len(ms)

    assert negative(during) > 0.7 > 0.25 > negative(before)
    assert negative(other) < 0.25 and negative(elsewhere) < 0.25  # the crisis is on x only
    viral = sim.viral_post(BRANDS[0], "x")
    assert (viral["author_followers"], viral["sentiment"], sim.viral) == (
        2_400_000,
        "negative",
        viral["id"],
    )
    kind, event = sim.scenario_event(BRANDS[0])
    assert kind == "mention" and event["platform"] == "x"


def test_silent_feed_and_engagement_collapse() -> None:
    silent = Simulator(BRANDS, random.Random(3), scenario=Scenario("silent", "acme", "x", 0))
    assert {e["brand"] for _, e in sample(silent, 2000)} == {"brewco"}
    collapse = Scenario("collapse", "acme", "x", 0)
    base = Counter(e["kind"] for k, e in sample(Simulator(BRANDS, random.Random(4)), 8000)
                   if k == "interaction" and e["brand"] == "acme")  # fmt: skip
    after = Counter(
        e["kind"]
        for k, e in sample(Simulator(BRANDS, random.Random(4), scenario=collapse), 8000)
        if k == "interaction" and e["brand"] == "acme"
    )
    # Comments (the engagement that comes as events) fall to a tenth; visits go on.
    ratio = (after["comment"] / after["landing_visit"]) / (base["comment"] / base["landing_visit"])
    assert 0.05 < ratio < 0.2
    assert after["landing_visit"] > 0.8 * base["landing_visit"]
    assert collapse.drops("brewco", "like", 0.99) is False
    # The platforms' model reads the same scenario: a tenth of the engagement, no silence.
    assert (collapse.engagement_factor("acme"), collapse.engagement_factor("brewco")) == (0.1, 1)
    assert not collapse.silences("acme")
    assert Scenario("silent", "acme", "x").silences("acme")
    assert not Scenario("silent", "acme", "x").silences("brewco")


def test_a_launch_adds_positive_buzz_and_its_campaign() -> None:
    launch = Scenario("launch", "acme", "x", 0)
    sim = Simulator(BRANDS, random.Random(5), scenario=launch)
    buzz = [sim.scenario_event(BRANDS[0]) for _ in range(600)]
    assert {kind for kind, _ in buzz} == {"mention"}
    assert {e["brand"] for _, e in buzz} == {"acme"}
    positive = sum(1 for _, e in buzz if tone_of(e["text"]) == "positive") / len(buzz)
    assert positive > 0.5  # 60% positive in a launch, 35% otherwise
    assert launch.campaign == "acme-launch-new"  # its ads: tests/.../test_platform_sim.py
    with pytest.raises(ValueError, match="scenario 'flood' is not one of crisis, launch"):
        Scenario("flood", "acme", "x")
    # A crisis and a launch add mentions (a surge, a buzz: 30% of the launch's extra events
    # were mentions before its ads moved to the platforms' model); the others add none.
    assert [Scenario(n, "acme", "x").extra_rate(20) for n in SCENARIOS] == [10, 3, 0, 0]
    assert Scenario("launch", "acme", "x").extra_rate(1) == 0.6


def test_chinese_texts_read_as_their_tone_in_house_or_come_labelled() -> None:
    """The demo's Chinese mentions must not page anyone by themselves: SnowNLP reads every
    praise and complaint template as such, and neutral ones always carry the source's label."""
    names = [b.name for b in load_settings(project_home() / "config").brands.brands]
    for tone in ("positive", "negative"):
        for template in TEXTS["zh"][tone]:
            for product in PRODUCTS["zh"]:
                for name in names:
                    text = template.format(brand=name, product=product)
                    assert score_text(text, "zh").label == tone, text
    assert always_labelled("zh", "neutral") and always_labelled("de", "positive")
    assert not always_labelled("zh", "negative") and not always_labelled("en", "neutral")
