"""Named simulator scenarios and the daily and weekly activity cycle (pure, no I/O).

- ``crisis``: a viral negative post by a big account, then a surge of negative mentions on one
  platform (the burst that opens an incident), sustained for the scenario's length;
- ``launch``: a new campaign: its ads appear (at several times the steady campaigns' budgets),
  so spend, impressions, clicks and conversions jump; mentions turn positive and more frequent;
- ``collapse``: engagement collapses: impressions go on, the likes, comments, shares and saves
  on the brand's posts grow at a tenth of their pace (snapshots and comment events);
- ``silent``: the brand's feed goes silent: none of its events and snapshots arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCENARIOS = ("crisis", "launch", "collapse", "silent")
ENGAGEMENT_KINDS = frozenset({"like", "comment", "share", "save"})
COLLAPSED = 0.1  # engagement in a collapse, relative to normal
# Relative activity by local hour: quiet at night, peaks at lunch and in the evening
# (averages 1.0 over a day).
_HOURLY = [
    0.35, 0.25, 0.2, 0.2, 0.25, 0.35, 0.55, 0.8, 1.0, 1.1, 1.15, 1.25,
    1.4, 1.35, 1.2, 1.15, 1.15, 1.25, 1.4, 1.55, 1.6, 1.45, 1.05, 0.65,
]  # fmt: skip
_NORM = sum(_HOURLY) / len(_HOURLY)
WEEKEND = 0.8  # Saturday and Sunday


def activity(when: datetime) -> float:
    """How busy social media is at ``when`` relative to the average (1.0)."""
    hour = when.hour + when.minute / 60
    low = int(hour) % 24
    frac = hour - int(hour)
    level = (_HOURLY[low] * (1 - frac) + _HOURLY[(low + 1) % 24] * frac) / _NORM
    return level * (WEEKEND if when.weekday() >= 5 else 1.0)


@dataclass(frozen=True)
class Scenario:
    """A scenario for one brand (on one platform, for a crisis), from ``start`` seconds into
    the stream for ``length`` seconds (0: to the end)."""

    name: str
    brand: str
    platform: str
    start: float = 20.0
    length: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"scenario {self.name!r} is not one of {', '.join(SCENARIOS)}")

    def active(self, elapsed: float) -> bool:
        """Whether the scenario runs ``elapsed`` seconds into the stream."""
        return elapsed >= self.start and (self.length <= 0 or elapsed < self.start + self.length)

    def drops(self, brand: str, interaction_kind: str | None, draw: float) -> bool:
        """Whether an event of ``brand`` (an interaction of ``interaction_kind``, or a mention
        when None) is left out; ``draw`` is uniform in [0, 1)."""
        if brand != self.brand:
            return False
        if self.name == "silent":
            return True
        return (
            self.name == "collapse" and interaction_kind in ENGAGEMENT_KINDS and draw >= COLLAPSED
        )

    def engagement_factor(self, brand: str) -> float:
        """How much of its usual engagement (likes, comments, shares, saves) ``brand``'s posts
        get while the scenario runs: a tenth in a collapse, else all of it."""
        return COLLAPSED if self.name == "collapse" and brand == self.brand else 1.0

    def silences(self, brand: str) -> bool:
        """Whether none of ``brand``'s events and snapshots arrive while the scenario runs."""
        return self.name == "silent" and brand == self.brand

    def tone_weights(self, brand: str, platform: str) -> list[float] | None:
        """Positive/neutral/negative weights of the brand's mentions on ``platform``, when the
        scenario changes them: a crisis on its platform, a launch everywhere."""
        if brand != self.brand or (self.name == "crisis" and platform != self.platform):
            return None
        weights: dict[str, list[float]] = {"crisis": [5, 15, 80], "launch": [60, 35, 5]}
        return weights.get(self.name)

    def extra_rate(self, rate: float) -> float:
        """Mentions per second the scenario adds for its brand on top of a ``rate`` stream: a
        crisis' surge, a launch's buzz (its ads and their funnel come from the platforms'
        model, socialpulse.devtools.platform_sim)."""
        if self.name == "crisis":
            return max(2.0, rate * 0.5)
        return max(0.6, rate * 0.15) if self.name == "launch" else 0.0

    @property
    def campaign(self) -> str:
        """The campaign a launch promotes."""
        return f"{self.brand}-launch-new"
