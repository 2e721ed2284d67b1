"""Why an incident fired, for its Slack message: the top posts by reach, the terms and hashtags
that rose most against the hour before, and the language breakdown, over the rule's window (at
most the last hour) on the incident's platform (all of the brand's for platform "all").
Negative-mention rules look at negative posts only. Read from streams.store.context_store's minutes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aredis

from alerts.detection.rule_check import AlertEvent
from socialpulse.core.redis_keys import RedisKeys
from streams.post_context import terms

LOOK_BACK = 3600  # the longest stretch shown, and the baseline hour before it
NEGATIVE_KPIS = frozenset({"mentions_negative", "negative_share"})
TOP_POSTS = 3
TOP_TERMS = 5
MIN_TERM_COUNT = 2


def rising_terms(
    now: Mapping[str, int],
    before: Mapping[str, int],
    now_minutes: int,
    before_minutes: int,
    top: int = TOP_TERMS,
    ignore: Collection[str] = (),
) -> list[tuple[str, int, float]]:
    """(term, count now, count expected at the hour before's rate), the biggest rises first;
    a rise is (now + 1) / (expected + 1), so a term new at 12 beats one going 40 -> 60.
    ``ignore``: terms that say nothing (the brand's own name: every mention has it)."""
    rate = now_minutes / before_minutes if before_minutes else 0.0
    ranked = []
    for term, count in now.items():
        if count < MIN_TERM_COUNT or term in ignore or term.lstrip("#") in ignore:
            continue
        expected = before.get(term, 0) * rate
        if count > expected:
            ranked.append(((count + 1) / (expected + 1), count, term, expected))
    ranked.sort(key=lambda r: (-r[0], -r[1], r[2]))
    return [(term, count, round(expected, 1)) for _, count, term, expected in ranked[:top]]


def top_posts(samples: Iterable[dict[str, Any]], top: int = TOP_POSTS) -> list[dict[str, Any]]:
    """The posts with the most reach (one per id), most first."""
    best: dict[str, dict[str, Any]] = {}
    for sample in samples:
        if sample["id"] not in best:
            best[sample["id"]] = sample
    return sorted(best.values(), key=lambda s: (-s["reach"], s["id"]))[:top]


def split_counts(
    fields: Iterable[Mapping[str, str]], platforms: Sequence[str], negative: bool
) -> tuple[Counter[str], Counter[str]]:
    """Term and language counts of the platforms from per-minute hashes."""
    terms: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    for minute in fields:
        for field, count in minute.items():
            platform, _, rest = field.partition("|")
            if platform not in platforms:
                continue
            if rest.startswith("lang:"):
                languages[rest.removeprefix("lang:")] += int(count)
            elif negative and rest.startswith("-|"):
                terms[rest.removeprefix("-|")] += int(count)
            elif not negative and not rest.startswith("-|"):
                terms[rest] += int(count)
    return terms, languages


async def incident_context(
    client: aredis.Redis,
    keys: RedisKeys,
    event: AlertEvent,
    brand_platforms: Sequence[str],
    brand_name: str = "",
) -> dict[str, Any]:
    """Posts, rising terms (not the brand's own name) and languages behind a firing (empty
    parts when none recorded)."""
    span = min(event.window, LOOK_BACK)
    # The minutes the window touches: the tick's own (a burst seconds before the tick is the
    # news) back to the one it starts in.
    last = int(event.at // 60) * 60
    now_minutes = [last - 60 * i for i in range(span // 60 + 1)]
    before_minutes = [now_minutes[-1] - 60 * (i + 1) for i in range(LOOK_BACK // 60)]
    platforms = list(brand_platforms) if event.platform == "all" else [event.platform]
    negative = event.kpi in NEGATIVE_KPIS or event.kind == "negative_spike"
    pipe = client.pipeline(transaction=False)
    for minute in [*now_minutes, *before_minutes]:
        pipe.hgetall(keys.context_counts(event.brand, minute))
    for minute in now_minutes:
        for platform in platforms:
            pipe.zrevrange(keys.context_posts(event.brand, minute, platform), 0, TOP_POSTS * 4)
    replies: list[Any] = await pipe.execute()
    split = len(now_minutes) + len(before_minutes)
    counts, posts = replies[:split], replies[split:]
    now_terms, languages = split_counts(counts[: len(now_minutes)], platforms, negative)
    before_terms, _ = split_counts(counts[len(now_minutes) :], platforms, negative)
    samples = [json.loads(raw) for members in posts for raw in members]
    if negative:
        samples = [s for s in samples if s.get("sentiment") == "negative"]
    return {
        "posts": top_posts(samples),
        "terms": [
            list(t)
            for t in rising_terms(
                now_terms,
                before_terms,
                len(now_minutes),
                60,
                ignore={event.brand.lower(), *terms(brand_name)},
            )
        ],
        "languages": dict(languages.most_common(6)),
    }


__all__ = ["incident_context", "rising_terms", "split_counts", "top_posts"]
