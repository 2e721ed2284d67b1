"""Which rolling counters an event increments, and how bucket hashes add up (pure, no I/O).

Counters are named as in the KPI catalog (shared/KPIS.md): ``mentions``, ``mentions_negative``,
``likes``, ``shares``, ... Each is kept per platform; a bucket hash field is
``<counter>|<platform>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from streams.events import INTERACTION_KINDS, Interaction, Mention
from streams.sentiment import Sentiment

# Interaction kind -> catalog counter name.
KIND_COUNTER = {kind: f"{kind}s" for kind in INTERACTION_KINDS}
MENTION_COUNTERS = ("mentions", "mentions_positive", "mentions_negative", "mentions_neutral")
ALL_COUNTERS = MENTION_COUNTERS + tuple(KIND_COUNTER.values())

# (counter, platform) -> count over a window
WindowCounts = dict[tuple[str, str], int]


def field(counter: str, platform: str) -> str:
    """Bucket hash field for a counter on a platform."""
    return f"{counter}|{platform}"


def mention_fields(mention: Mention, sentiment: Sentiment) -> list[str]:
    """Fields a mention increments: the mention itself and its sentiment label."""
    return [
        field("mentions", mention.platform),
        field(f"mentions_{sentiment.label}", mention.platform),
    ]


def interaction_fields(interaction: Interaction) -> list[str]:
    """Fields an interaction increments: the counter of its kind."""
    return [field(KIND_COUNTER[interaction.kind], interaction.platform)]


def sum_buckets(buckets: Iterable[Mapping[str, str | int]]) -> WindowCounts:
    """Add bucket hashes (field -> count, as Redis returns them) per (counter, platform)."""
    total: Counter[tuple[str, str]] = Counter()
    for bucket in buckets:
        for name, count in bucket.items():
            counter, _, platform = str(name).partition("|")
            total[(counter, platform)] += int(count)
    return dict(total)


def by_counter(counts: WindowCounts, counter: str) -> dict[str, int]:
    """One counter's value per platform."""
    return {platform: n for (name, platform), n in counts.items() if name == counter}
