"""Negative-mention spike rule (pure): which platforms of a brand are over the threshold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RULE = "negative_spike"


@dataclass(frozen=True)
class SpikeFinding:
    """A brand/platform whose negative mentions in the window reached the threshold."""

    brand: str
    brand_name: str
    platform: str
    negative: int
    mentions: int
    threshold: int
    window_seconds: int
    severity: str


@dataclass(frozen=True)
class SpikeDecision:
    """Platforms over the threshold (may fire) and platforms under it (clear if firing)."""

    over: list[SpikeFinding]
    under: list[str]


def decide(
    brand: str,
    brand_name: str,
    negative: Mapping[str, int],
    mentions: Mapping[str, int],
    platforms: Iterable[str],
    threshold: int,
    window_seconds: int,
    severity: str,
) -> SpikeDecision:
    """Split the brand's platforms by whether negative mentions are at or above ``threshold``.

    ``platforms`` are the configured ones; any platform with counts is considered too.
    """
    over: list[SpikeFinding] = []
    under: list[str] = []
    for platform in dict.fromkeys([*platforms, *negative]):
        count = negative.get(platform, 0)
        if count >= threshold:
            over.append(
                SpikeFinding(
                    brand,
                    brand_name,
                    platform,
                    count,
                    mentions.get(platform, 0),
                    threshold,
                    window_seconds,
                    severity,
                )
            )
        else:
            under.append(platform)
    return SpikeDecision(over, under)
