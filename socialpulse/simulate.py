"""Demo event generator: a steady stream of mentions and interactions, and negative bursts.

Events are produced with kafka-python (acks=all), keyed by brand so a brand's events stay in
one partition and in order, one per message or in envelopes (socialpulse.event_producer).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from socialpulse.event_producer import EventProducer, kafka_producer
from socialpulse.settings import Brand, Settings

POSITIVE = [
    "Loving the new {product} from {brand}! 😍",
    "{brand} support fixed my issue in minutes, great service 👏",
    "Best {product} I've had this year. Thank you {brand}!",
    "{brand} just made my morning ☀️ so good",
    "Huge fan of what {brand} is doing lately 🙌",
]
NEUTRAL = [
    "Has anyone tried the {product} from {brand}?",
    "{brand} announced a new {product} today",
    "Where can I buy {brand} {product} in Berlin?",
    "{brand} store opens at 9 tomorrow",
    "Comparing {brand} and others for {product}",
]
NEGATIVE = [
    "{brand} charged me twice and support is ignoring me. Terrible 😡",
    "Worst {product} ever, {brand} you should be ashamed",
    "Never buying from {brand} again. Awful service 👎",
    "{brand} app crashed again, this is ridiculous and frustrating",
    "My {product} from {brand} arrived broken. Disappointed and angry",
]
PRODUCTS = ["latte", "app", "flight", "subscription", "update", "delivery", "headset"]
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

    def mention(
        self,
        brand: Brand,
        platform: str | None = None,
        tone: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A mention; tone (positive/neutral/negative) is drawn when not given."""
        tone = tone or self.rng.choices(["positive", "neutral", "negative"], [35, 50, 15])[0]
        template = self.rng.choice(
            {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}[tone]
        )
        event: dict[str, Any] = {
            "schema_version": 1,
            "id": f"m-{uuid.uuid4().hex}",
            "ts": (now or datetime.now(UTC)).isoformat(),
            "platform": platform or self.rng.choice(brand.platforms),
            "brand": brand.id,
            "author": f"user{self.rng.randint(1, 50_000)}",
            "text": template.format(brand=brand.name, product=self.rng.choice(PRODUCTS)),
            "author_followers": int(self.rng.paretovariate(1.2) * 100),
        }
        if self.rng.random() < 0.3:  # some sources (listening tools) send their own label
            event["sentiment"] = tone
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
            "text": "Sorry to hear that! We have sent you a DM to sort it out.",
            "from_brand": True,
            "reply_to": conversation,
        }

    def interaction(self, brand: Brand, now: datetime | None = None) -> dict[str, Any]:
        """An interaction of a kind drawn from a typical mix."""
        kind = self.rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
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


def events(sim: Simulator) -> Iterator[tuple[str, dict[str, Any]]]:
    """Endless (kind, event) pairs: about 30% mentions, 70% interactions, and the brands'
    replies to customer-care messages as they fall due."""
    while True:
        reply = sim.due_reply()
        if reply:
            yield "mention", reply
        brand = sim.rng.choice(sim.brands)
        if sim.rng.random() < 0.3:
            yield "mention", sim.mention(brand)
        else:
            yield "interaction", sim.interaction(brand)


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
) -> int:
    """Produce ``rate`` events/s for ``duration`` s (0: until interrupted), in envelopes of up
    to ``envelope`` events (1: one event per message); return events sent."""
    sim = Simulator(settings.brands.brands, random.Random(seed))
    topics = settings.pipeline.topics
    producer = EventProducer(kafka_producer(settings, "socialpulse-simulate"), envelope)
    by_id = {b.id: b for b in sim.brands}
    if burst_brand and burst_brand not in by_id:
        raise SystemExit(
            f"--burst: brand {burst_brand!r} is not in config/brands.yaml "
            f"(brands: {', '.join(by_id)})"
        )
    start = time.monotonic()
    sent = 0
    burst_done = burst_brand is None
    stream = events(sim)
    steady = 0
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            if not burst_done and time.monotonic() - start >= burst_after:
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
            kind, event = next(stream)
            topic = topics.mentions if kind == "mention" else topics.interactions
            producer.send(topic, event)
            sent += 1
            steady += 1
            # Pace to the target rate from the start, so slow sends do not lower the rate.
            ahead = steady / rate - (time.monotonic() - start) if rate > 0 else 0
            if ahead > 0:
                time.sleep(ahead)
    except KeyboardInterrupt:
        pass
    finally:
        producer.close(30)
    return sent
