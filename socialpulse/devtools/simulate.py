"""Demo event generator: a realistic stream of mentions and interactions, and scenarios.

Every brand of brands.yaml (competitors included) on its platforms: multilingual mentions
(Chinese on Weibo, WeChat, Douyin and Xiaohongshu), a typical interaction mix with campaigns,
spend, conversions and orders, customer-care questions answered within minutes (a few left
waiting), bots flagged by the source, and a daily and weekly rhythm. Named scenarios
(socialpulse.devtools.scenarios) add a crisis, a campaign launch, an engagement collapse or a silent
feed. Events are produced with kafka-python (acks=all), keyed by brand so a brand's events
stay in one partition and in order, one per message or in envelopes.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.event_producer import EventProducer, kafka_producer
from socialpulse.app.settings import Settings
from socialpulse.core.config import Brand
from socialpulse.devtools.scenarios import Scenario, activity
from socialpulse.devtools.sim_texts import (
    CARE_REPLIES,
    CHINESE_PLATFORMS,
    PRODUCTS,
    TEXTS,
    always_labelled,
    languages,
)

TONES = ["positive", "neutral", "negative"]
BOT_SHARE = 0.03  # mentions by accounts the source flags as bots

# Interaction mix roughly as seen on brand accounts: many impressions, few follows.
KIND_WEIGHTS = {
    "impression": 50,
    "like": 18,
    "comment": 4,
    "share": 3,
    "save": 2,
    "click": 8,
    "video_start": 6,
    "video_complete": 3,
    "follow": 1.5,
    "unfollow": 0.5,
    "delivered": 4,
    "open": 1.2,
    "landing_visit": 3,
    "form_submit": 0.4,
    "conversion": 0.5,
    "order": 0.4,
    "refund": 0.03,
    "spend": 1,
    "followers": 0.2,  # a follower-count snapshot of the brand's account
    "nps_response": 0.2,
    "csat_response": 0.3,
}


@dataclass
class Simulator:
    """Generates realistic-looking events for the configured brands."""

    brands: list[Brand]
    rng: random.Random
    followers: dict[tuple[str, str], int] = field(default_factory=dict)  # (brand, platform)
    # Customer-care replies to send: (when, brand, platform, conversation answered)
    replies: list[tuple[float, Brand, str, str]] = field(default_factory=list)
    scenario: Scenario | None = None
    elapsed: float = 0.0  # seconds into the stream (scenarios start and stop by it)
    viral: str | None = None  # the crisis' viral post, which surge mentions reply to

    def active_scenario(self) -> Scenario | None:
        """The scenario, while it runs."""
        active = self.scenario and self.scenario.active(self.elapsed)
        return self.scenario if active else None

    def mention(
        self,
        brand: Brand,
        platform: str | None = None,
        tone: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A mention; tone (positive/neutral/negative) is drawn when not given, language by
        the platform's audience."""
        platform = platform or self.rng.choice(brand.platforms)
        scenario = self.active_scenario()
        weights = (scenario and scenario.tone_weights(brand.id, platform)) or [35, 50, 15]
        tone = tone or self.rng.choices(TONES, weights)[0]
        lang_weights = languages(platform)
        lang = self.rng.choices(list(lang_weights), list(lang_weights.values()))[0]
        template = self.rng.choice(TEXTS[lang][tone])
        event: dict[str, Any] = {
            "schema_version": 1,
            "id": f"m-{uuid.uuid4().hex}",
            "ts": (now or datetime.now(UTC)).isoformat(),
            "platform": platform,
            "brand": brand.id,
            "author": f"user{self.rng.randint(1, 50_000)}",
            "text": template.format(brand=brand.name, product=self.rng.choice(PRODUCTS[lang])),
            "author_followers": int(self.rng.paretovariate(1.2) * 100),
            "lang": lang,
        }
        # Listening tools label some mentions, and always those in-house scoring cannot read.
        if always_labelled(lang, tone) or self.rng.random() < 0.3:
            event["sentiment"] = tone
        if self.rng.random() < BOT_SHARE:
            event["author"] = f"promo_bot_{self.rng.randint(1, 40)}"
            event["is_bot"] = True
            return event
        if self.rng.random() < 0.1:  # a question or complaint for customer care
            event["needs_reply"] = True
            # Most get an answer within minutes; about 1 in 5 waits in the backlog.
            if self.rng.random() < 0.8:
                due = time.monotonic() + self.rng.expovariate(1 / 90)
                self.replies.append((due, brand, event["platform"], event["id"]))
        return event

    def due_reply(self) -> dict[str, Any] | None:
        """The brand's reply to the oldest waiting conversation whose reply is due, if any."""
        due = [r for r in self.replies if r[0] <= time.monotonic()]
        if not due:
            return None
        reply = min(due, key=lambda r: r[0])
        self.replies.remove(reply)
        _, brand, platform, conversation = reply
        return {
            "schema_version": 1,
            "id": f"r-{uuid.uuid4().hex}",
            "ts": datetime.now(UTC).isoformat(),
            "platform": platform,
            "brand": brand.id,
            "author": f"{brand.id}_care",
            "text": CARE_REPLIES["zh" if platform in CHINESE_PLATFORMS else "en"],
            "from_brand": True,
            "reply_to": conversation,
        }

    def interaction(
        self, brand: Brand, now: datetime | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """An interaction of a kind drawn from a typical mix (a launch shifts it to ads)."""
        scenario = self.active_scenario()
        weights = dict(KIND_WEIGHTS)
        launch = scenario and scenario.name == "launch" and scenario.brand == brand.id
        if launch:
            for boosted, factor in LAUNCH_BOOST.items():
                weights[boosted] *= factor
        kind = kind or self.rng.choices(list(weights), list(weights.values()))[0]
        event: dict[str, Any] = {
            "schema_version": 1,
            "id": f"i-{uuid.uuid4().hex}",
            "ts": (now or datetime.now(UTC)).isoformat(),
            "platform": self.rng.choice(brand.platforms),
            "brand": brand.id,
            "kind": kind,
            "content_id": f"{brand.id}-post-{self.rng.randint(1, 40)}",
            "user_id": f"u{self.rng.randint(1, 200_000)}",
        }
        post = int(event["content_id"].rsplit("-", 1)[1])
        if post <= 12:  # the first posts are ads of two campaigns
            event["campaign"] = f"{brand.id}-{'launch' if post <= 6 else 'retarget'}"
        if launch and scenario and (post <= 12 or kind in LAUNCH_BOOST):
            event["campaign"] = scenario.campaign
            event["content_id"] = f"{scenario.campaign}-ad-{post % 3 + 1}"
        account = (brand.id, event["platform"])
        followers = self.followers.setdefault(account, self.rng.randint(5_000, 500_000))
        if kind == "order":
            event["value"] = round(self.rng.lognormvariate(3.5, 0.6), 2)  # ~33 a basket
        elif kind == "spend":
            event["value"] = round(self.rng.uniform(0.5, 3.0), 2)  # ad spend ticks
        elif kind in ("follow", "unfollow"):
            self.followers[account] = followers + (1 if kind == "follow" else -1)
        elif kind == "followers":
            event["value"] = followers
        elif kind == "nps_response":
            event["value"] = self.rng.choices(range(11), [1, 1, 1, 1, 2, 3, 4, 8, 12, 14, 10])[0]
        elif kind == "csat_response":
            event["value"] = self.rng.choices(range(1, 6), [1, 1, 2, 5, 6])[0]
        return event

    def viral_post(self, brand: Brand, platform: str) -> dict[str, Any]:
        """The post that starts a crisis: negative, by an account with millions of followers."""
        event = self.mention(brand, platform, "negative")
        event.update(
            author="big_voice_official",
            author_followers=2_400_000,
            sentiment="negative",
            is_bot=False,
            needs_reply=False,
        )
        self.viral = event["id"]
        return event

    def scenario_event(self, brand: Brand) -> tuple[str, dict[str, Any]]:
        """One of the events a running scenario adds for its brand."""
        scenario = self.scenario
        assert scenario is not None
        if scenario.name == "crisis":
            event = self.mention(brand, scenario.platform)
            if self.viral and self.rng.random() < 0.4:  # replies and quotes of the viral post
                event["conversation_id"] = self.viral
            return "mention", event
        if self.rng.random() < 0.3:
            return "mention", self.mention(brand)
        kind = self.rng.choices(list(LAUNCH_BOOST), list(LAUNCH_BOOST.values()))[0]
        return "interaction", self.interaction(brand, kind=kind)


# A launch: ad spend and the funnel behind it.
LAUNCH_BOOST = {"spend": 6.0, "impression": 2.0, "click": 4.0, "landing_visit": 4.0,
                "conversion": 5.0, "order": 4.0}  # fmt: skip


def events(sim: Simulator) -> Iterator[tuple[str, dict[str, Any]]]:
    """Endless (kind, event) pairs: about 30% mentions, 70% interactions, and the brands'
    replies to customer-care messages as they fall due; a scenario may leave some out (a
    silent feed, an engagement collapse): then the next event comes instead."""
    while True:
        reply = sim.due_reply()
        scenario = sim.active_scenario()
        if reply and not (scenario and scenario.drops(reply["brand"], None, 0.0)):
            yield "mention", reply
        brand = sim.rng.choice(sim.brands)
        if sim.rng.random() < 0.3:
            kind, event = "mention", sim.mention(brand)
        else:
            kind, event = "interaction", sim.interaction(brand)
        if scenario and scenario.drops(brand.id, event.get("kind"), sim.rng.random()):
            continue
        yield kind, event


def run(
    settings: Settings,
    rate: float,
    duration: float,
    burst_brand: str | None,
    burst_platform: str | None,
    burst_size: int,
    burst_after: float,
    seed: int | None,
    envelope: int = 1,
    scenario: Scenario | None = None,
    cycle: bool = False,
) -> int:
    """Produce ``rate`` events/s for ``duration`` s (0: until interrupted), in envelopes of up
    to ``envelope`` events (1: one event per message); return events sent. With ``cycle``
    the rate follows the time of day and week (``rate`` is the day's average); a crisis
    ``scenario`` opens with ``burst_size`` negative mentions after its viral post."""
    sim = Simulator(settings.brands.brands, random.Random(seed), scenario=scenario)
    topics = settings.pipeline.topics
    topic_of = {"mention": topics.mentions, "interaction": topics.interactions}
    producer = EventProducer(
        kafka_producer(settings.pipeline.kafka, "socialpulse-simulate"), envelope
    )
    by_id = {b.id: b for b in sim.brands}
    for brand_id in (burst_brand, scenario.brand if scenario else None):
        if brand_id and brand_id not in by_id:
            raise SystemExit(
                f"simulate: brand {brand_id!r} is not in config/brands.yaml "
                f"(brands: {', '.join(by_id)})"
            )
    start = time.monotonic()
    sent = 0
    burst_done = burst_brand is None
    scenario_started = False
    stream = events(sim)
    next_steady = start
    next_extra = start + (scenario.start if scenario else 0)
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            now = time.monotonic()
            sim.elapsed = now - start
            if not burst_done and sim.elapsed >= burst_after:
                brand = by_id[str(burst_brand)]
                platform = burst_platform or brand.platforms[0]
                for _ in range(burst_size):
                    producer.send(topics.mentions, sim.mention(brand, platform, "negative"))
                sent += burst_size
                burst_done = True
                print(
                    f"simulate: burst of {burst_size} negative mentions for {brand.id} on "
                    f"{platform}",
                    flush=True,
                )
            active = scenario is not None and scenario.active(sim.elapsed)
            if scenario and active and not scenario_started:
                scenario_started = True
                sent += _start_scenario(sim, producer, topics.mentions, by_id, burst_size)
            extra = scenario.extra_rate(rate) if scenario and active else 0.0
            if scenario and extra and now >= next_extra:
                kind, event = sim.scenario_event(by_id[scenario.brand])
                producer.send(topic_of[kind], event)
                sent += 1
                next_extra += 1 / extra
            if now >= next_steady:
                kind, event = next(stream)
                producer.send(topic_of[kind], event)
                sent += 1
                # UTC, as the baselines learn hours and days (and the demo's warm start was built).
                level = activity(datetime.now(UTC)) if cycle else 1.0
                next_steady += 1 / (rate * level) if rate > 0 else 0
            # Pace to the target rate from the start, so slow sends do not lower the rate.
            wake = min(next_steady, next_extra if extra else next_steady)
            ahead = wake - time.monotonic()
            if ahead > 0:
                producer.send_due()
                time.sleep(ahead)
    except KeyboardInterrupt:
        pass
    finally:
        producer.close(30)
    return sent


def _start_scenario(
    sim: Simulator,
    producer: EventProducer,
    mentions_topic: str,
    by_id: dict[str, Brand],
    burst_size: int,
) -> int:
    scenario = sim.scenario
    assert scenario is not None
    brand = by_id[scenario.brand]
    what = {
        "crisis": f"crisis for {brand.id} on {scenario.platform}: a viral negative post and "
        f"{burst_size} negative mentions, then a negative surge",
        "launch": f"campaign launch {scenario.campaign}: spend, clicks and conversions jump",
        "collapse": f"engagement collapse for {brand.id}: likes, comments, shares fall to 10%",
        "silent": f"silent feed: no more events of {brand.id}",
    }[scenario.name]
    print(f"simulate: scenario {what}", flush=True)
    if scenario.name != "crisis":
        return 0
    producer.send(mentions_topic, sim.viral_post(brand, scenario.platform))
    for _ in range(burst_size):
        event = sim.mention(brand, scenario.platform, "negative")
        event["conversation_id"] = sim.viral
        producer.send(mentions_topic, event)
    return 1 + burst_size
