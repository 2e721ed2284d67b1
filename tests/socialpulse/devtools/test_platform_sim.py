"""The platforms' model: snapshots and webhook events of a seeded run, against the magnitudes
of the KPI catalog (engagement 1-6% of reach by platform, CTR near 1%, conversions a few % of
clicks) and the scenarios, counted as the worker counts them (pure: no Kafka)."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialpulse.core.config import Brand
from socialpulse.devtools.platform_sim import PROFILES, PlatformSim
from socialpulse.devtools.scenarios import Scenario
from streams.decoding import InvalidEvent, decode
from streams.events import KINDS_NEEDING_VALUE, Interaction, MetricSnapshot

PLATFORMS = ["x", "instagram", "facebook", "linkedin", "tiktok", "youtube", "weibo", "wechat",
             "douyin", "xiaohongshu"]  # fmt: skip
BRANDS = [
    Brand(id="acme", name="Acme", platforms=PLATFORMS, competitors=["brewco"]),
    Brand(id="brewco", name="BrewCo", platforms=["x", "instagram", "weibo"]),
    Brand(id="globex", name="Globex", platforms=["x", "linkedin", "youtube", "wechat"]),
]
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday morning
Made = list[tuple[str, dict[str, Any]]]


def run(hours: float, seed: int = 1, scenario: Scenario | None = None) -> tuple[PlatformSim, Made]:
    sim = PlatformSim(BRANDS, seed, START, scenario)
    return sim, list(sim.history(START + timedelta(hours=hours), 30))


def counted(made: Made, start: float = 0, end: float = 1e12) -> dict[tuple, float]:
    """What a window from ``start`` to ``end`` seconds into the run counts, as the worker does:
    increments between successive snapshots of an object (from zero when it was published
    during the run), and event counts; keyed (brand, platform, "ad"|"post", counter). The
    worker spreads a post published before the run back over its life, mostly before any
    window here: its first snapshot is left out as a starting point."""
    last: dict[str, dict[str, float]] = {}
    sums: dict[tuple, float] = defaultdict(float)
    for kind, event in made:
        at = (datetime.fromisoformat(event["ts"]) - START).total_seconds()
        side = "ad" if event.get("object_type") == "ad" or event.get("campaign") else "post"
        if kind == "snapshot":
            metrics = event["metrics"]
            new = datetime.fromisoformat(event["published_at"]) >= START
            fresh: dict[str, float] = {} if new else metrics
            before = last.get(event["object_id"], fresh)
            last[event["object_id"]] = metrics
            if start <= at < end:
                for name, value in metrics.items():
                    sums[(event["brand"], event["platform"], side, name)] += value - before.get(
                        name, 0
                    )
        elif start <= at < end:
            sums[(event["brand"], event["platform"], side, event["kind"])] += event.get("count", 1)
    return sums


def total(sums: dict[tuple, float], counter: str, **where: str) -> float:
    keys = ("brand", "platform", "side")
    return sum(
        value
        for key, value in sums.items()
        if key[3] == counter and all(key[keys.index(k)] == v for k, v in where.items())
    )


def engagements(sums: dict[tuple, float], **where: str) -> float:
    return sum(total(sums, c, **where) for c in ("likes", "comment", "shares", "clicks"))


@pytest.fixture(scope="module")
def day() -> tuple[PlatformSim, Made]:
    return run(24)


def test_every_snapshot_and_event_validates_and_none_is_per_viewer(day) -> None:
    _, made = day
    kinds: Counter[str] = Counter()
    for kind, event in made:
        model = MetricSnapshot if kind == "snapshot" else Interaction
        decoded = decode(json.dumps(event).encode(), model)
        assert not isinstance(decoded, InvalidEvent), (decoded, event)
        if isinstance(decoded, Interaction):
            kinds[decoded.kind] += 1
            assert decoded.count == 1 or decoded.kind not in KINDS_NEEDING_VALUE
    assert {"comment", "landing_visit", "form_submit", "conversion", "order", "follow",
            "unfollow", "followers", "delivered", "open", "nps_response", "csat_response"} <= set(
        kinds
    )  # fmt: skip
    # Impressions, likes, shares, saves and clicks only come in snapshots.
    assert not {"impression", "like", "share", "save", "click", "spend"} & set(kinds)
    assert kinds["comment"] > kinds["order"] > kinds["refund"]
    # Events come in time order, snapshots at their poll (every 30 s).
    times = [datetime.fromisoformat(e["ts"]) for k, e in made if k == "snapshot"]
    assert times == sorted(times) and {t.second for t in times} <= {0, 30}
    # A newsletter push every 6 hours (and one at the start): one event for all recipients.
    pushes = [e for _, e in made if e.get("kind") == "delivered"]
    assert len(pushes) == 3 * 5 and all(e["count"] >= 9_000 for e in pushes)


def test_the_same_seed_gives_the_same_stream_and_mentions_keep_their_draws() -> None:
    assert run(1, seed=5)[1] == run(1, seed=5)[1] != run(1, seed=6)[1]
    # The model draws from its own generator: the mentions' (and the demo's warm start) stay.
    rng = random.Random(1)
    PlatformSim(BRANDS, 1, START).step(START + timedelta(minutes=5))
    assert rng.random() == random.Random(1).random()


def test_totals_never_decrease_but_in_a_rare_logged_correction(day) -> None:
    sim, made = day
    last: dict[str, dict[str, float]] = {}
    decreases, snapshots = set(), 0
    for kind, event in made:
        if kind != "snapshot":
            continue
        snapshots += 1
        before = last.get(event["object_id"], {})
        for name, value in event["metrics"].items():
            assert name == "spend" or isinstance(value, int)
            if value < before.get(name, 0):
                decreases.add((event["object_id"], name, event["ts"]))
        last[event["object_id"]] = event["metrics"]
    assert decreases == set(sim.corrections)
    assert 0 < len(decreases) < snapshots / 1000


def test_engagement_is_1_to_6_percent_of_reach_by_platform(day) -> None:
    _, made = day
    sums = counted(made, 3600)  # after the first hour (objects already live start there)
    rates = {}
    for platform in PLATFORMS:
        reach = total(sums, "reach", platform=platform, side="post")
        impressions = total(sums, "impressions", platform=platform, side="post")
        rate = engagements(sums, platform=platform, side="post") / reach
        low, high = PROFILES[platform].engagement
        assert 0.8 * low < rate < 1.2 * high and 0.01 < rate < 0.06, (platform, rate)
        assert 1.1 <= impressions / reach <= 1.5, platform
        rates[platform] = rate
    assert rates["instagram"] > max(rates["x"], rates["linkedin"]) * 1.5
    # Saves small, video views on video platforms only.
    assert total(sums, "saves") < 0.1 * total(sums, "likes")
    assert {p for (_, p, _, c) in sums if c == "video_views"} == {"tiktok", "youtube", "douyin"}


def test_a_post_reaches_20_to_60_percent_of_followers_over_its_life() -> None:
    sim = PlatformSim(BRANDS, 3, START)
    first = {o.object_id for o in sim.objects}
    list(sim.history(START + timedelta(days=2), 600))
    # Posts published since the start, polled for most of their life (2 days).
    new = [o for o in sim.objects if o.object_id not in first and o.object_type != "ad"]
    old = [o for o in new if sim.now - o.published_at > timedelta(hours=36)]
    assert len(old) > 10
    for post in old:
        share = post.totals["reach"] / sim.followers[(post.brand, post.platform)]
        # Each post's target share is drawn in 20-60%; what it reaches is a Poisson sum around
        # that target (a few % either way) and, at 36 h, not quite all of its life.
        assert 0.15 < share < 0.63, (post.object_id, share)


def test_ads_click_near_1_percent_cost_a_few_units_and_convert_after_clicks(day) -> None:
    _, made = day
    sums = counted(made, 3600)
    for brand in BRANDS:
        impressions = total(sums, "impressions", brand=brand.id, side="ad")
        clicks = total(sums, "clicks", brand=brand.id, side="ad")
        spend = total(sums, "spend", brand=brand.id, side="ad")
        conversions = total(sums, "conversions", brand=brand.id, side="ad")
        assert 0.005 < clicks / impressions < 0.02, brand.id
        assert 3 <= spend / impressions * 1000 <= 8, brand.id  # CPM
        assert 0.01 < conversions / clicks < 0.07, brand.id
        orders = total(sums, "order", brand=brand.id, side="ad")
        # Orders follow conversions (not every one is a purchase), visits follow clicks.
        assert 0.5 * conversions < orders <= conversions + 3
        assert total(sums, "landing_visit", brand=brand.id, side="ad") < clicks
    # Organic orders follow the CRM's conversions.
    assert total(sums, "order", side="post") <= total(sums, "conversion", side="post") + 3
    # An order comes after the conversion or click that led to it: none in the first seconds.
    first_order = min(e["ts"] for _, e in made if e.get("kind") == "order")
    assert datetime.fromisoformat(first_order) > START + timedelta(seconds=30)


def test_a_collapse_cuts_the_engagement_growth_of_the_brands_posts_to_a_tenth() -> None:
    collapse = Scenario("collapse", "acme", "x", start=3 * 3600)
    _, made = run(5, seed=2, scenario=collapse)
    before, after = counted(made, 3600, 3 * 3600), counted(made, 3 * 3600, 5 * 3600)

    def per_impression(sums: dict[tuple, float], brand: str, side: str | None = None) -> float:
        where = {"brand": brand, **({"side": side} if side else {})}
        return engagements(sums, **where) / total(sums, "impressions", **where)

    cut = per_impression(after, "acme", "post") / per_impression(before, "acme", "post")
    assert 0.05 < cut < 0.16, cut
    # Impressions go on; engagement_rate over all impressions (ads too) falls by over half.
    assert total(after, "impressions", brand="acme") > 0.6 * total(
        before, "impressions", brand="acme"
    )
    assert per_impression(after, "acme") < 0.5 * per_impression(before, "acme")
    for other in ("brewco", "globex"):
        assert 0.7 < per_impression(after, other) / per_impression(before, other) < 1.4, other


def test_a_launch_adds_its_ads_and_the_brands_spend_jumps() -> None:
    launch = Scenario("launch", "acme", "x", start=2 * 3600)
    _, made = run(4, seed=4, scenario=launch)
    ads = [e for k, e in made if k == "snapshot" and e.get("campaign") == launch.campaign]
    assert ads and min(e["ts"] for e in ads) > (START + timedelta(hours=2)).isoformat()
    assert {e["published_at"] for e in ads} == {(START + timedelta(hours=2)).isoformat()}
    assert len({e["object_id"] for e in ads}) == 3 and "x" in {e["platform"] for e in ads}
    before, after = counted(made, 3600, 2 * 3600), counted(made, 2 * 3600, 3 * 3600)
    for counter in ("spend", "impressions", "clicks"):
        assert total(after, counter, brand="acme", side="ad") > 2.5 * total(
            before, counter, brand="acme", side="ad"
        ), counter
    assert total(after, "conversions", brand="acme", side="ad") > total(
        before, "conversions", brand="acme", side="ad"
    )


def test_a_silent_feed_sends_nothing_of_the_brand_while_it_lasts() -> None:
    silent = Scenario("silent", "acme", "x", start=3600, length=3600)
    _, made = run(3, seed=6, scenario=silent)

    def hour(event: dict[str, Any]) -> int:
        return int((datetime.fromisoformat(event["ts"]) - START).total_seconds() // 3600)

    seen = Counter((e["brand"], hour(e)) for _, e in made)
    assert seen[("acme", 1)] == 0 < seen[("acme", 0)] and seen[("acme", 2)] > 0
    assert seen[("brewco", 1)] > 0.5 * seen[("brewco", 0)]
