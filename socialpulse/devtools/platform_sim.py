"""The brands' accounts as the platforms report them: metric snapshots and webhook events.

A pure, seeded model (no I/O, no wall clock): each brand's account on each of its platforms has
a follower count and publishes posts (videos on video platforms); each campaign runs ads. A
poller reads every live object (a post for :data:`POST_LIFE` after publication, an ad while it
runs) every poll interval and reports its running totals as a ``MetricSnapshot`` dict:

- posts: reach 20-60% of followers over the post's life on a decay curve (half of it within
  the platform's ``half_life``), impressions 1.1-1.5 times reach, engagements (likes, comments,
  shares, clicks) 1-6% of reach by platform (Instagram and TikTok high, X and LinkedIn low),
  saves small, video views on video platforms;
- ads: spend at the ad's daily budget, impressions at a CPM of a few currency units, CTR near
  1% of impressions, conversions 2-5% of clicks.

Totals are whole numbers (spend in cents) that never go down, except a rare correction (an
unlike wave, invalid traffic removed), logged in :attr:`PlatformSim.corrections`. Comments are
not in the snapshots: the platforms' webhooks deliver them one by one (counting both would count
them twice). Likewise the website and CRM send landing visits (batched, with ``count``), form
submits, organic conversions, orders after conversions, refunds after orders; accounts send
follows and unfollows (``count``) and an hourly follower count; each brand sends a newsletter
push every 6 hours (``delivered`` with ``count`` = recipients, then batches of ``open``) and
NPS and CSAT answers. Ad conversions come only from the ads' snapshots.

Every snapshot carries its object's ``published_at``, as the platforms report it: the worker
spreads an object's first totals back over its life since publication, so posts already live
when the poller starts fill the boards from the first poll (the part of their growth older than
the longest window is read by no window) without a spike of two days' totals in one minute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from socialpulse.core.config import Brand
from socialpulse.devtools.scenarios import Scenario, activity
from socialpulse.devtools.series_generator import poisson

POST_LIFE = timedelta(days=2)  # how long a post is polled after its publication


@dataclass(frozen=True)
class Profile:
    """How a platform's audience behaves: posts a day, engagements per reach (low, high),
    half-life of a post's reach in hours, and whether its posts are videos."""

    posts_per_day: float
    engagement: tuple[float, float]
    half_life: float
    video: bool = False


PROFILES = {
    "x": Profile(4.0, (0.010, 0.020), 1.5),
    "linkedin": Profile(1.0, (0.010, 0.022), 8.0),
    "facebook": Profile(2.0, (0.015, 0.035), 5.0),
    "instagram": Profile(1.5, (0.035, 0.060), 6.0),
    "tiktok": Profile(1.5, (0.035, 0.060), 10.0, video=True),
    "douyin": Profile(1.5, (0.030, 0.055), 10.0, video=True),
    "youtube": Profile(0.5, (0.025, 0.050), 16.0, video=True),
    "weibo": Profile(3.0, (0.012, 0.030), 3.0),
    "wechat": Profile(1.0, (0.015, 0.035), 6.0),
    "xiaohongshu": Profile(1.5, (0.030, 0.055), 10.0),
}
OTHER = Profile(1.0, (0.015, 0.035), 6.0)
# Shares of a post's engagements (they sum to 1); saves come on top and are not engagements.
MIX = {"likes": 0.78, "comments": 0.06, "shares": 0.06, "clicks": 0.10}
SAVES = 0.04
# What a collapse cuts on posts: all their engagement, link clicks too (ads go on as bought).
ENGAGED = ("likes", "comments", "shares", "saves", "clicks")
COMPLETION = 0.3  # of a video's plays that watch it to the end
CORRECTION_CHANCE = 0.02  # per object and day: the platform lowers a total slightly
PUSH_EVERY = 6 * 3600  # seconds between a brand's newsletter pushes


@dataclass
class Tracked:
    """A post, video or ad the poller follows, with its running totals."""

    object_id: str
    brand: str
    platform: str
    object_type: str
    published_at: datetime
    announced: bool  # published while polled (else already live when the poller started)
    campaign: str | None = None
    totals: dict[str, float] = field(default_factory=dict)
    per_reach: float = 1.3  # impressions per unique account reached
    goal: float = 0.0  # posts: impressions over the post's life
    engagement: float = 0.0  # posts: engagements per reach
    half_life: float = 6.0  # posts: hours
    age: float = 0.0  # posts: hours since publication, weighted by the audience's activity
    video_share: float = 0.0  # posts: video views per impression
    budget: float = 0.0  # ads: spend a day
    cpm: float = 5.0
    ctr: float = 0.01
    cvr: float = 0.03
    until: datetime | None = None  # ads: when it stops (None: runs on)


class PlatformSim:
    """The accounts, posts and ads of ``brands``, polled from ``start``; seeded and pure."""

    def __init__(
        self,
        brands: list[Brand],
        seed: int | None,
        start: datetime,
        scenario: Scenario | None = None,
        cycle: bool = True,
    ):
        # Its own generator: the mentions' draws (socialpulse.devtools.simulate) stay as they
        # were, which the demo's warm start was learned from.
        self.rng = random.Random(f"platforms-{seed}")
        self.brands = brands
        self.start = self.now = start
        self.scenario = scenario
        self.rhythm: Callable[[datetime], float] = activity if cycle else (lambda _: 1.0)
        self.followers = {
            (b.id, p): int(math.exp(self.rng.uniform(math.log(5_000), math.log(500_000))))
            for b in brands
            for p in b.platforms
        }
        self.subscribers = {b.id: self.rng.randint(10_000, 80_000) for b in brands}
        self.objects: list[Tracked] = []
        self.pending: list[tuple[datetime, dict[str, Any]]] = []  # events due later
        self.corrections: list[tuple[str, str, str]] = []  # (object_id, metric, ts)
        self.launched = False
        self._serial = 0
        for brand in brands:
            for platform in brand.platforms:
                profile = PROFILES.get(platform, OTHER)
                # Brands post on a schedule: the last two days' worth, at random hours.
                for _ in range(max(1, round(profile.posts_per_day * POST_LIFE.days))):
                    age = timedelta(seconds=self.rng.uniform(0, POST_LIFE.total_seconds()))
                    self._publish(brand.id, platform, start - age, announced=False)
            for campaign in ("launch", "retarget"):
                for _ in range(3):
                    platform = self.rng.choice(brand.platforms)
                    self._run_ad(brand.id, platform, f"{brand.id}-{campaign}", start, False, 1.0)

    def step(self, until: datetime) -> list[tuple[str, dict[str, Any]]]:
        """Advance to ``until``: ("snapshot", totals at ``until``) of every live object and
        ("interaction", event) of what happened meanwhile, by time; later ones wait."""
        t1, t2 = self.now, until
        dt = (t2 - t1).total_seconds()
        if dt <= 0:
            return []
        self.now = until
        mid = t1 + (t2 - t1) / 2
        level = self.rhythm(mid)
        self._maybe_launch(t2)
        snapshots: list[dict[str, Any]] = []
        for brand in self.brands:
            for platform in brand.platforms:
                rate = PROFILES.get(platform, OTHER).posts_per_day / 86400 * level
                for _ in range(poisson(self.rng, rate * dt)):
                    self._publish(brand.id, platform, t1 + (t2 - t1) * self.rng.random(), True)
        reached: dict[tuple[str, str], int] = {}
        self.objects = [o for o in self.objects if o.budget or t2 - o.published_at <= POST_LIFE]
        for obj in self.objects:
            if obj.published_at >= t2:
                continue
            grown = self._grow_ad(obj, t1, t2, level) if obj.budget else self._grow(obj, t1, t2)
            key = (obj.brand, obj.platform)
            reached[key] = reached.get(key, 0) + grown
            if self.rng.random() < CORRECTION_CHANCE * dt / 86400:
                self._correct(obj, t2)
            if not self._silent(obj.brand, t2):
                snapshots.append(self._snapshot(obj, t2))
        self._account_events(reached, t1, t2, level)
        due = [(t, e) for t, e in self.pending if t <= t2]
        self.pending = [(t, e) for t, e in self.pending if t > t2]
        due.sort(key=lambda item: item[0])
        events = [("interaction", e) for t, e in due if not self._silent(e["brand"], t)]
        return events + [("snapshot", s) for s in snapshots]

    def history(self, end: datetime, poll_every: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """Everything polled and delivered from the model's time to ``end``, a poll every
        ``poll_every`` seconds."""
        while self.now < end:
            yield from self.step(min(end, self.now + timedelta(seconds=poll_every)))

    # -- objects ---------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self.rng.getrandbits(48):012x}{self._serial}"

    def _publish(self, brand: str, platform: str, at: datetime, announced: bool) -> None:
        profile = PROFILES.get(platform, OTHER)
        reach = self.followers[(brand, platform)] * self.rng.uniform(0.2, 0.6)
        post = Tracked(
            object_id=self._id(f"{brand}-{platform}-post"),
            brand=brand,
            platform=platform,
            object_type="video" if profile.video else "post",
            published_at=at,
            announced=announced,
            per_reach=self.rng.uniform(1.1, 1.5),
            engagement=self.rng.uniform(*profile.engagement),
            half_life=profile.half_life * self.rng.uniform(0.7, 1.3),
            video_share=self.rng.uniform(0.35, 0.7) if profile.video else 0.0,
        )
        post.goal = reach * post.per_reach
        post.totals = dict.fromkeys(self._post_metrics(post), 0.0)
        if not announced:  # already live: the totals it has gathered so far, as expected
            post.age = (self.start - at).total_seconds() / 3600
            done = 1 - self._left(post)
            post.totals["impressions"] = float(round(post.goal * done))
            post.totals["reach"] = float(math.floor(post.totals["impressions"] / post.per_reach))
            for metric, share in (*MIX.items(), ("saves", SAVES)):
                if metric in post.totals:
                    post.totals[metric] = float(
                        round(post.totals["reach"] * post.engagement * share)
                    )
            if "video_views" in post.totals:
                views = float(round(post.totals["impressions"] * post.video_share))
                post.totals["video_views"] = post.totals["video_starts"] = views
                post.totals["video_completes"] = float(round(views * COMPLETION))
        self.objects.append(post)

    @staticmethod
    def _post_metrics(post: Tracked) -> list[str]:
        video = ["video_views", "video_starts", "video_completes"] if post.video_share else []
        return ["impressions", "reach", "likes", "shares", "saves", "clicks", *video]

    def _run_ad(
        self, brand: str, platform: str, campaign: str, at: datetime, announced: bool,
        scale: float, until: datetime | None = None,
    ) -> None:  # fmt: skip
        self.objects.append(
            Tracked(
                object_id=self._id(f"{campaign}-ad"),
                brand=brand,
                platform=platform,
                object_type="ad",
                published_at=at,
                announced=announced,
                campaign=campaign,
                totals=dict.fromkeys(
                    ("impressions", "reach", "clicks", "spend", "conversions"), 0.0
                ),
                per_reach=self.rng.uniform(1.4, 2.2),
                budget=self.rng.uniform(15, 60) * scale,
                cpm=self.rng.uniform(3, 8),
                ctr=self.rng.uniform(0.007, 0.014),
                cvr=self.rng.uniform(0.02, 0.05),
                until=until,
            )
        )

    def _maybe_launch(self, at: datetime) -> None:
        scenario = self.scenario
        elapsed = (at - self.start).total_seconds()
        if (
            self.launched
            or not scenario
            or scenario.name != "launch"
            or not scenario.active(elapsed)
        ):
            return
        self.launched = True
        brand = next(b for b in self.brands if b.id == scenario.brand)
        begun = self.start + timedelta(seconds=scenario.start)
        ends = begun + timedelta(seconds=scenario.length) if scenario.length > 0 else None
        for platform in (scenario.platform, *self.rng.sample(brand.platforms, 2)):
            # Launch budgets are several times the steady campaigns', so the brand's spend and
            # funnel jump; its ads are new: they count from zero at publication.
            self._run_ad(brand.id, platform, scenario.campaign, begun, True, 6.0, ends)

    @staticmethod
    def _left(post: Tracked) -> float:
        """The share of the post's impressions still to come (1 at publication)."""
        return float(0.5 ** (post.age / post.half_life))

    # -- growth -----------------------------------------------------------------------------

    def _grow(self, post: Tracked, t1: datetime, t2: datetime) -> int:
        """Grow a post from t1 to t2; the accounts newly reached."""
        totals = post.totals
        frm = max(t1, post.published_at)
        # The curve runs in the audience's hours: a post published at night grows slowly until
        # the morning, and still reaches what it would have by day.
        left = self._left(post)
        post.age += (t2 - frm).total_seconds() / 3600 * self.rhythm(frm + (t2 - frm) / 2)
        expected = post.goal * (left - self._left(post))
        totals["impressions"] += poisson(self.rng, expected)
        reach = max(totals["reach"], math.floor(totals["impressions"] / post.per_reach))
        new_reach = int(reach - totals["reach"])
        totals["reach"] = reach
        cut = self._engagement_factor(post.brand, t2)
        base = new_reach * post.engagement
        for metric, share in (*MIX.items(), ("saves", SAVES)):
            made = poisson(self.rng, base * share * (cut if metric in ENGAGED else 1.0))
            if metric == "comments":
                self._comments(post, made, frm, t2)
            else:
                totals[metric] += made
        if post.video_share:
            views = poisson(self.rng, expected * post.video_share)
            totals["video_views"] += views
            # Every view starts a play; a share of them (short videos more) watch to the end.
            totals["video_starts"] += views
            totals["video_completes"] = float(math.floor(totals["video_starts"] * COMPLETION))
        visits = poisson(self.rng, base * MIX["clicks"] * 0.6)
        self._site(post, visits, frm, t2)
        return new_reach

    def _grow_ad(self, ad: Tracked, t1: datetime, t2: datetime, level: float) -> int:
        """Spend an ad's budget from t1 to t2 and what it buys; the accounts newly reached."""
        if ad.until is not None and ad.until <= t1:
            return 0
        totals = ad.totals
        frm = max(t1, ad.published_at)
        seconds = (t2 - frm).total_seconds()
        spent = ad.budget * seconds / 86400 * level * self.rng.uniform(0.8, 1.2)
        totals["spend"] += spent
        shown = poisson(self.rng, spent / ad.cpm * 1000)
        totals["impressions"] += shown
        reach = max(totals["reach"], math.floor(totals["impressions"] / ad.per_reach))
        new_reach = int(reach - totals["reach"])
        totals["reach"] = reach
        clicks = poisson(self.rng, shown * ad.ctr)
        totals["clicks"] += clicks
        converted = poisson(self.rng, clicks * ad.cvr)
        totals["conversions"] += converted
        self._site(ad, poisson(self.rng, clicks * 0.75), frm, t2)
        for _ in range(converted):  # the orders behind the ad's conversions, minutes later
            self._order(
                ad, self._between(frm, t2) + timedelta(seconds=self.rng.expovariate(1 / 300))
            )
        return new_reach

    def _correct(self, obj: Tracked, at: datetime) -> None:
        """A platform lowering a total slightly: an unlike wave, or invalid traffic removed."""
        metric = "impressions" if obj.budget else "likes"
        if obj.totals.get(metric, 0) < 50:
            return
        obj.totals[metric] -= max(1, round(obj.totals[metric] * self.rng.uniform(0.005, 0.03)))
        self.corrections.append((obj.object_id, metric, at.isoformat()))
        if metric == "impressions":
            obj.totals["reach"] = math.floor(obj.totals["impressions"] / obj.per_reach)
            self.corrections.append((obj.object_id, "reach", at.isoformat()))

    def _snapshot(self, obj: Tracked, at: datetime) -> dict[str, Any]:
        metrics: dict[str, int | float] = {
            name: round(value, 2) if name == "spend" else int(value)
            for name, value in obj.totals.items()
        }
        snapshot: dict[str, Any] = {
            "schema_version": 1,
            "ts": at.isoformat(),
            "platform": obj.platform,
            "brand": obj.brand,
            "object_id": obj.object_id,
            "object_type": obj.object_type,
            "metrics": metrics,
        }
        snapshot["published_at"] = obj.published_at.isoformat()
        if obj.campaign:
            snapshot["campaign"] = obj.campaign
        return snapshot

    # -- events -----------------------------------------------------------------------------

    def _between(self, t1: datetime, t2: datetime) -> datetime:
        return t1 + (t2 - t1) * self.rng.random()

    def _event(
        self, brand: str, platform: str, kind: str, at: datetime, content: str, **extra: Any
    ) -> None:
        event: dict[str, Any] = {
            "schema_version": 1,
            "id": self._id("i"),
            "ts": at.isoformat(),
            "platform": platform,
            "brand": brand,
            "kind": kind,
            "content_id": content,
            "user_id": f"u{self.rng.randint(1, 2_000_000)}",
        }
        event.update({k: v for k, v in extra.items() if v is not None})
        self.pending.append((at, event))

    def _comments(self, post: Tracked, made: int, t1: datetime, t2: datetime) -> None:
        for _ in range(made):
            self._event(post.brand, post.platform, "comment", self._between(t1, t2), post.object_id)

    def _site(self, obj: Tracked, visits: int, t1: datetime, t2: datetime) -> None:
        """The website's side of clicks: visits (one batched event), forms, organic conversions
        (ads' conversions are in their snapshots) and the orders behind them."""
        if not visits:
            return
        at = self._between(t1, t2)
        self._event(obj.brand, obj.platform, "landing_visit", at, obj.object_id,
                    campaign=obj.campaign, count=visits)  # fmt: skip
        for _ in range(poisson(self.rng, visits * 0.04)):
            later = at + timedelta(seconds=self.rng.expovariate(1 / 120))
            self._event(obj.brand, obj.platform, "form_submit", later, obj.object_id,
                        campaign=obj.campaign)  # fmt: skip
        if obj.budget:
            return
        for _ in range(poisson(self.rng, visits * 0.02)):
            later = at + timedelta(seconds=self.rng.expovariate(1 / 180))
            self._event(obj.brand, obj.platform, "conversion", later, obj.object_id)
            self._order(obj, later + timedelta(seconds=self.rng.expovariate(1 / 300)))

    def _order(self, obj: Tracked, at: datetime) -> None:
        if self.rng.random() >= 0.85:  # a few conversions are sign-ups, not purchases
            return
        value = round(self.rng.lognormvariate(3.5, 0.6), 2)  # ~33 a basket
        self._event(obj.brand, obj.platform, "order", at, obj.object_id, campaign=obj.campaign,
                    value=value)  # fmt: skip
        if self.rng.random() < 0.03:
            later = at + timedelta(seconds=self.rng.expovariate(1 / 7200))
            self._event(obj.brand, obj.platform, "refund", later, obj.object_id,
                        campaign=obj.campaign)  # fmt: skip

    def _account_events(
        self, reached: dict[tuple[str, str], int], t1: datetime, t2: datetime, level: float
    ) -> None:
        dt = (t2 - t1).total_seconds()
        first = t1 == self.start
        for brand in self.brands:
            for platform in brand.platforms:
                account = (brand.id, platform)
                handle = f"{brand.id}-{platform}-account"
                follows = poisson(self.rng, reached.get(account, 0) * 0.0015)
                unfollows = poisson(self.rng, follows * 0.3 + self.followers[account] * 2e-7 * dt)
                for kind, n in (("follow", follows), ("unfollow", unfollows)):
                    if n:
                        self._event(
                            brand.id, platform, kind, self._between(t1, t2), handle, count=n
                        )
                self.followers[account] += follows - unfollows
                if first or t1.hour != t2.hour:  # the account's follower count, hourly
                    self._event(brand.id, platform, "followers", t2, handle,
                                value=self.followers[account])  # fmt: skip
            for kind, per_hour in (("nps_response", 2.0), ("csat_response", 3.0)):
                for _ in range(poisson(self.rng, per_hour * level * dt / 3600)):
                    self._survey(brand, kind, self._between(t1, t2))
            if first or int(t1.timestamp()) // PUSH_EVERY != int(t2.timestamp()) // PUSH_EVERY:
                self._push(brand, t2)

    def _survey(self, brand: Brand, kind: str, at: datetime) -> None:
        if kind == "nps_response":
            score = self.rng.choices(range(11), [1, 1, 1, 1, 2, 3, 4, 8, 12, 14, 10])[0]
        else:
            score = self.rng.choices(range(1, 6), [1, 1, 2, 5, 6])[0]
        self._event(brand.id, self.rng.choice(brand.platforms), kind, at, f"{brand.id}-survey",
                    value=score)  # fmt: skip

    def _push(self, brand: Brand, at: datetime) -> None:
        """A newsletter or official-account push: one delivery report for all recipients,
        then the opens in batches over the next two hours."""
        platform = "wechat" if "wechat" in brand.platforms else brand.platforms[0]
        push = f"{brand.id}-push-{at:%Y%m%d%H}"
        delivered = round(self.subscribers[brand.id] * self.rng.uniform(0.95, 0.99))
        self._event(brand.id, platform, "delivered", at, push, count=delivered)
        opens = delivered * self.rng.uniform(0.18, 0.32)
        for batch in range(12):  # most opens come within the first half hour
            n = poisson(self.rng, opens * (0.5 ** (batch / 2)) * (1 - 0.5**0.5))
            if n:
                later = at + timedelta(minutes=10 * batch + self.rng.uniform(0, 10))
                self._event(brand.id, platform, "open", later, push, count=n)

    # -- scenarios ----------------------------------------------------------------------------

    def _elapsed(self, at: datetime) -> float:
        return (at - self.start).total_seconds()

    def _engagement_factor(self, brand: str, at: datetime) -> float:
        scenario = self.scenario
        if scenario and scenario.active(self._elapsed(at)):
            return scenario.engagement_factor(brand)
        return 1.0

    def _silent(self, brand: str, at: datetime) -> bool:
        scenario = self.scenario
        return bool(scenario and scenario.active(self._elapsed(at)) and scenario.silences(brand))


def utc(when: datetime) -> datetime:
    """``when`` as an aware UTC datetime (naive ones are taken as UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
