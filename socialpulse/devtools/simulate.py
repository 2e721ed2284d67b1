"""Demo stream: mentions as listening tools deliver them, the brands' accounts as the
platforms report them, and scenarios.

Listening side (this module): every brand of brands.yaml (competitors included) on its platforms
gets multilingual mentions (Chinese on Weibo, WeChat, Douyin and Xiaohongshu), customer-care
questions answered within minutes (a few left waiting), bots flagged by the source, with a daily
and weekly rhythm.

Platform side (socialpulse.devtools.platform_sim): each brand's account on each platform has
followers and publishes posts, each campaign runs ads; a poller sends a metric snapshot (running
totals: impressions, reach, likes, shares, saves, clicks, video views; ads' spend and conversions)
of every live object every poll interval to the snapshots topic, and the webhooks and CRM send
what is one event each (comments, orders, form submits, surveys; batched with ``count`` where a
source batches: visits, follows, pushes and opens). No impression or like is a per-viewer event.

Named scenarios (socialpulse.devtools.scenarios) add a crisis, a campaign launch, an engagement
collapse or a silent feed. Events are produced with kafka-python (acks=all), keyed by brand so a
brand's events stay in one partition and in order, one per message or in envelopes.
"""

from __future__ import annotations

import heapq
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.event_producer import EventProducer, kafka_producer
from socialpulse.app.settings import Settings
from socialpulse.core.config import Brand
from socialpulse.devtools.platform_sim import PlatformSim
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
MENTION_SHARE = 0.3  # of ``rate``: the demo's warm start (demo_baseline) was learned at it
POLL_EVERY = 30.0  # seconds between two polls of the platforms' insights (the demo's)

# The webhook and CRM kinds of a flat stream (events(), for throughput benchmarks); the demo's
# own interactions come from the platforms' model, at its magnitudes. Impressions, likes,
# shares, saves and ad clicks are never events: they come in metric snapshots.
WEBHOOK_WEIGHTS = {
    "comment": 30,
    "follow": 6,
    "unfollow": 2,
    "delivered": 0.5,
    "open": 6,
    "landing_visit": 10,
    "form_submit": 2,
    "conversion": 1.5,
    "order": 1.2,
    "refund": 0.05,
    "followers": 0.3,  # the account's follower count
    "nps_response": 0.3,
    "csat_response": 0.5,
}
# Kinds a source reports in batches: one event stands for ``count`` of them.
BATCHED = frozenset({"follow", "unfollow", "delivered", "open", "landing_visit"})


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
        """A webhook or CRM interaction of a kind drawn from :data:`WEBHOOK_WEIGHTS` (batched
        kinds with a ``count``), on one of 40 posts; for flat streams such as benchmarks."""
        kind = kind or self.rng.choices(list(WEBHOOK_WEIGHTS), list(WEBHOOK_WEIGHTS.values()))[0]
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
        account = (brand.id, event["platform"])
        followers = self.followers.setdefault(account, self.rng.randint(5_000, 500_000))
        if kind in BATCHED:
            # A push reaches thousands at once; follows, opens and visits come in batches.
            event["count"] = (
                self.rng.randint(1_000, 50_000)
                if kind == "delivered"
                else (self.rng.randint(1, 30))
            )
        if kind == "order":
            event["value"] = round(self.rng.lognormvariate(3.5, 0.6), 2)  # ~33 a basket
        elif kind in ("follow", "unfollow"):
            change = event["count"] if kind == "follow" else -event["count"]
            self.followers[account] = max(0, followers + change)
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
        """One of the mentions a running scenario adds for its brand: a crisis' surge on its
        platform (some replying to the viral post), a launch's buzz (its ads come from the
        platforms' model)."""
        scenario = self.scenario
        assert scenario is not None
        if scenario.name == "crisis":
            event = self.mention(brand, scenario.platform)
            if self.viral and self.rng.random() < 0.4:  # replies and quotes of the viral post
                event["conversation_id"] = self.viral
            return "mention", event
        return "mention", self.mention(brand)


def events(sim: Simulator) -> Iterator[tuple[str, dict[str, Any]]]:
    """Endless (kind, event) pairs of a flat stream without a clock (throughput benchmarks):
    30% mentions, 70% webhook interactions, and the brands' replies to customer-care messages
    as they fall due; a scenario may leave some out (a silent feed, an engagement collapse):
    then the next event comes instead."""
    while True:
        reply = sim.due_reply()
        scenario = sim.active_scenario()
        if reply and not (scenario and scenario.drops(reply["brand"], None, 0.0)):
            yield "mention", reply
        brand = sim.rng.choice(sim.brands)
        if sim.rng.random() < MENTION_SHARE:
            kind, event = "mention", sim.mention(brand)
        else:
            kind, event = "interaction", sim.interaction(brand)
        if scenario and scenario.drops(brand.id, event.get("kind"), sim.rng.random()):
            continue
        yield kind, event


def listening(sim: Simulator) -> Iterator[dict[str, Any]]:
    """Endless mentions, and the brands' replies to customer-care messages as they fall due
    (the listening side of the demo); a silent brand's are left out."""
    while True:
        scenario = sim.active_scenario()
        reply = sim.due_reply()
        if reply and not (scenario and scenario.drops(reply["brand"], None, 0.0)):
            yield reply
        event = sim.mention(sim.rng.choice(sim.brands))
        if not (scenario and scenario.drops(event["brand"], None, 0.0)):
            yield event


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
    poll_every: float = POLL_EVERY,
) -> int:
    """Produce the demo stream for ``duration`` s (0: until interrupted), in envelopes of up to
    ``envelope`` events (1: one event per message); return the events sent (mentions and
    interactions; the snapshots are printed apart, as they are not events).

    ``rate`` is the listening side's scale, as it always was: mentions come at 30% of ``rate``
    a second (the share the demo's warm start was learned at). The platform side replaces the
    other 70%, which used to be invented per-viewer interactions: every ``poll_every`` s a
    snapshot of each live post and ad of every brand (about 4 a second at 30 s) and the
    webhooks' events in between (comments, visits, orders, ...: about 1 a second), at the
    magnitudes of the accounts (socialpulse.devtools.platform_sim), whatever ``rate`` is.
    With ``cycle`` both follow the time of day and week (``rate`` is the day's average); a
    crisis ``scenario`` opens with ``burst_size`` negative mentions after its viral post."""
    sim = Simulator(settings.brands.brands, random.Random(seed), scenario=scenario)
    topics = settings.pipeline.topics
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
    if poll_every <= 0:
        raise SystemExit(f"simulate: --poll-every {poll_every:g} must be more than 0 seconds")
    poll = timedelta(seconds=poll_every)
    # The model starts a poll back, so its first poll is read at once (not a poll from now).
    platforms = PlatformSim(sim.brands, seed, datetime.now(UTC) - poll, scenario, cycle)
    start = time.monotonic()
    sent = snapshots = 0
    burst_done = burst_brand is None
    scenario_started = False
    stream = listening(sim)
    # The platforms' model runs a poll ahead; its snapshots and events wait here for their time.
    due: list[tuple[datetime, int, str, dict[str, Any]]] = []
    order = 0
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
                _, event = sim.scenario_event(by_id[scenario.brand])
                producer.send(topics.mentions, event)
                sent += 1
                next_extra += 1 / extra
            # UTC, as the baselines learn hours and days (and the demo's warm start was built).
            wall = datetime.now(UTC)
            if now >= next_steady:
                producer.send(topics.mentions, next(stream))
                sent += 1
                level = activity(wall) if cycle else 1.0
                next_steady += 1 / (rate * MENTION_SHARE * level) if rate > 0 else 0
            while platforms.now < wall + poll:
                for kind, event in platforms.step(platforms.now + poll):
                    order += 1
                    heapq.heappush(due, (datetime.fromisoformat(event["ts"]), order, kind, event))
            while due and due[0][0] <= wall:
                _, _, kind, event = heapq.heappop(due)
                if kind == "snapshot":
                    producer.send(topics.snapshots, event)
                    snapshots += 1
                else:
                    producer.send(topics.interactions, event)
                    sent += 1
            # Pace to the target rate from the start, so slow sends do not lower the rate.
            wake = min(next_steady, next_extra if extra else next_steady)
            if due:
                wake = min(wake, now + (due[0][0] - wall).total_seconds())
            ahead = wake - time.monotonic()
            if ahead > 0:
                producer.send_due()
                time.sleep(ahead)
    except KeyboardInterrupt:
        pass
    finally:
        producer.close(30)
    print(f"simulate: sent {snapshots} metric snapshots (a poll every {poll_every:g}s)", flush=True)
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
        "launch": f"campaign launch {scenario.campaign}: its ads appear, spend, impressions, "
        "clicks and conversions jump",
        "collapse": f"engagement collapse for {brand.id}: likes, comments, shares, saves on its "
        "posts grow at 10% while impressions go on",
        "silent": f"silent feed: no more events and snapshots of {brand.id}",
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
