"""Learned baselines of a KPI series: what is normal now, and how far from it is unusual (pure).

Two methods, chosen per deployment in ``alerts.yaml: baselines.method`` and compared on the
same series by ``benchmarks/detection.py`` (docs/detection.md has the figures):

- ``seasonal`` (default): level + hour-of-day offset + day-of-week offset, learned online with
  exponential smoothing, and a spread (EW mean absolute residual). Updates are Huber-clipped at
  ``clip`` spreads, so a burst moves the baseline a little, not all the way.
- ``rolling``: median and MAD of the last ``rolling_samples`` values, no seasonality: the
  textbook robust z-score.

Counts are modelled on a square-root scale (``transform: sqrt``): for Poisson-like counts this
makes the spread the same at 4 a.m. and at noon, and the spread never goes below the Poisson
floor (0.5 on that scale), so three mentions instead of one is not a 4-sigma event.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

Transform = Literal["sqrt", "none"]
Method = Literal["seasonal", "rolling"]
# sd of sqrt(X) for Poisson X is about 1/2 whatever the mean: the noise floor of a count.
SQRT_SPREAD_FLOOR = 0.5
# Mean absolute deviation -> standard deviation for normal residuals; MAD -> sd likewise.
MEAN_ABS_TO_SD = math.sqrt(math.pi / 2)
MAD_TO_SD = 1.4826
# A residual teaches the spread at most this many spreads (see Baseline.update).
SPREAD_SAMPLE_CAP = 2.0


@dataclass(frozen=True)
class BaselineParams:
    """How a baseline learns: method, scale, smoothing half-lives and warm-up."""

    method: Method = "seasonal"
    transform: Transform = "sqrt"
    update_every: int = 300  # seconds between samples folded in
    level_half_life: int = 86400
    hour_half_life: int = 3 * 86400  # of an hour-of-day slot's value, in days of visits
    day_half_life: int = 21 * 86400
    spread_half_life: int = 86400
    clip: float = 3.0  # residuals beyond this many spreads are clipped when learning
    spread_floor: float = 0.0  # added to the transform's own floor (ratios: e.g. 0.01)
    warmup: int = 86400  # learned data needed before deviation rules may fire
    rolling_samples: int = 288

    def alpha(self, half_life: int, per: int | None = None) -> float:
        """Smoothing factor per update for a half-life (``per``: seconds an update stands for)."""
        step = per or self.update_every
        return 1.0 - 0.5 ** (step / half_life)

    @property
    def floor(self) -> float:
        """Smallest spread used on the transformed scale."""
        own = SQRT_SPREAD_FLOOR if self.transform == "sqrt" else 0.0
        return own + self.spread_floor


def forward(value: float, transform: Transform) -> float:
    """A raw KPI value on the noise scale, where spreads and z-scores are measured."""
    return math.sqrt(max(value, 0.0)) if transform == "sqrt" else value


def backward(value: float, transform: Transform) -> float:
    """A value on the noise scale back in the KPI's units."""
    return max(value, 0.0) ** 2 if transform == "sqrt" else value


def to_model(value: float, transform: Transform) -> float:
    """A raw value on the scale the seasonal profile is learned on: log(1 + x) for counts, so
    that a weekend that is 30% quieter is 30% quieter at 4 a.m. and at noon alike."""
    return math.log1p(max(value, 0.0)) if transform == "sqrt" else value


def from_model(value: float, transform: Transform) -> float:
    """A value on the profile's scale back in the KPI's units."""
    return math.expm1(value) if transform == "sqrt" else value


@dataclass(frozen=True)
class Expected:
    """The baseline at one moment: expected value (KPI units) and spread on the noise scale."""

    value: float
    spread: float
    transform: Transform
    ready: bool

    @property
    def centre(self) -> float:
        """The expected value on the noise scale."""
        return forward(self.value, self.transform)

    def band(self, z: float) -> tuple[float, float]:
        """Lower and upper values ``z`` spreads away, in the KPI's units."""
        low, high = self.centre - z * self.spread, self.centre + z * self.spread
        low = max(low, 0.0) if self.transform == "sqrt" else low
        return backward(low, self.transform), backward(high, self.transform)

    def z(self, value: float) -> float:
        """How many spreads ``value`` lies above (+) or below (-) the centre."""
        return (forward(value, self.transform) - self.centre) / self.spread


@functools.lru_cache(maxsize=64)
def _slots(ts: float) -> tuple[int, int]:
    """The UTC hour of day and weekday (Monday 0) of ``ts``, by arithmetic: unix time has no
    leap seconds, and 1970-01-01 was a Thursday (datetime's own conversion was a tenth of an
    evaluation round at 1,000 brands)."""
    days, seconds = divmod(math.floor(ts), 86400)
    return seconds // 3600, (days + 3) % 7


@dataclass
class Baseline:
    """One KPI series' learned normal; serialisable with :meth:`to_dict` / :meth:`from_dict`."""

    params: BaselineParams
    level: float | None = None
    spread: float = 0.0
    hours: list[float | None] = field(default_factory=lambda: [None] * 24)
    days: list[float | None] = field(default_factory=lambda: [None] * 7)
    hour_visits: list[int] = field(default_factory=lambda: [0] * 24)
    day_visits: list[int] = field(default_factory=lambda: [0] * 7)
    recent: list[float] = field(default_factory=list)  # rolling method only
    updates: int = 0
    last_update: float | None = None
    # The last expected value and what it was computed for (the state's version and the slot):
    # it changes only when a sample is learned or the hour turns, not at every 10 s tick.
    _memo: tuple[tuple[Any, ...], Expected | None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def ready(self) -> bool:
        """True once enough data was learned for deviation rules to trust it."""
        return self.updates * self.params.update_every >= self.params.warmup

    def expected(self, ts: float) -> Expected | None:
        """The expected value at ``ts`` and its spread, or None before any data."""
        seasonal = self.params.method == "seasonal"
        at = (self.updates, self.last_update, self.level, self.spread,
              _slots(ts) if seasonal else None)  # fmt: skip
        memo = self._memo
        if memo is not None and memo[0] == at:
            return memo[1]
        expected = self._expected(ts)
        self._memo = (at, expected)
        return expected

    def _expected(self, ts: float) -> Expected | None:
        p = self.params
        if p.method == "rolling":
            if not self.recent:
                return None
            centre = statistics.median(self.recent)
            mad = statistics.median(abs(v - centre) for v in self.recent)
            spread = max(mad * MAD_TO_SD, p.floor, 1e-9)
            return Expected(backward(centre, p.transform), spread, p.transform, self.ready)
        if self.level is None:
            return None
        model = self._model(ts)
        value = from_model(model, p.transform)
        return Expected(value, max(self.spread, p.floor, 1e-9), p.transform, self.ready)

    def _model(self, ts: float) -> float:
        assert self.level is not None
        hour, day = _slots(ts)
        return self.level + (self.hours[hour] or 0.0) + (self.days[day] or 0.0)

    def due(self, ts: float) -> bool:
        """Whether the sample at ``ts`` is one to fold in (one per ``update_every``)."""
        step = self.params.update_every
        return self.last_update is None or ts // step > self.last_update // step

    def update(self, ts: float, value: float) -> None:
        """Fold the KPI's value at ``ts`` into the baseline (callers check :meth:`due`); a value
        that is not a finite number teaches nothing (it would make the baseline NaN for good)."""
        if not math.isfinite(value):
            return
        p = self.params
        self.updates += 1
        self.last_update = ts
        if p.method == "rolling":
            self.recent = [*self.recent, forward(value, p.transform)][-p.rolling_samples :]
            return
        y = to_model(value, p.transform)
        if self.level is None:
            self.level = y
            self.spread = p.floor
            return
        hour, day = _slots(ts)
        expected = self.expected(ts)
        assert expected is not None
        noise = forward(value, p.transform) - expected.centre
        if self.ready and abs(noise) > p.clip * expected.spread:
            # A burst teaches the baseline only up to `clip` spreads: it stays news, not normal.
            edge = expected.centre + math.copysign(p.clip * expected.spread, noise)
            y = to_model(backward(edge, p.transform), p.transform)
            noise = math.copysign(p.clip * expected.spread, noise)
        residual = y - self._model(ts)
        self.level += p.alpha(p.level_half_life) * residual
        # A slot seen for the first time takes the whole residual: day one already has a shape.
        per_hour = 3600 / p.update_every  # visits of an hour slot per day
        hour_alpha = p.alpha(p.hour_half_life, per=int(86400 / per_hour))
        day_alpha = p.alpha(p.day_half_life, per=int(7 * 86400 / (86400 / p.update_every)))
        # A slot's first visits average its residuals (weight 1/n), later ones smooth: the first
        # day already has a daily shape and the first Monday a Monday offset.
        self.hour_visits[hour] += 1
        hour_weight = max(hour_alpha, 1 / self.hour_visits[hour])
        self.hours[hour] = (self.hours[hour] or 0.0) + hour_weight * residual
        # The first day's shape goes to the hour profile; day-of-week offsets learn from the
        # second day on, from what the hour profile does not explain.
        if self.updates * p.update_every > 86400:
            self.day_visits[day] += 1
            day_weight = max(day_alpha, 1 / self.day_visits[day])
            self.days[day] = (self.days[day] or 0.0) + day_weight * residual
        self._centre_profiles()
        # The spread learns from residuals capped at twice itself: hours of silence or a
        # two-day level shift would otherwise double it and blind the rules after them.
        spread_alpha = p.alpha(p.spread_half_life)
        sample = min(abs(noise) * MEAN_ABS_TO_SD, SPREAD_SAMPLE_CAP * expected.spread)
        self.spread += spread_alpha * (sample - self.spread)

    def _centre_profiles(self) -> None:
        # Level and offsets could both absorb a constant; keep the offsets averaging zero so the
        # level means "typical value now" and its slow smoothing carries trends.
        assert self.level is not None
        for profile in (self.hours, self.days):
            known = [v for v in profile if v is not None]
            if len(known) == len(profile):
                mean = sum(known) / len(known)
                profile[:] = [v - mean for v in known]
                self.level += mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (params are configuration, not state)."""
        return {
            "level": self.level,
            "spread": self.spread,
            "hours": self.hours,
            "days": self.days,
            "hour_visits": self.hour_visits,
            "day_visits": self.day_visits,
            "recent": self.recent,
            "updates": self.updates,
            "last_update": self.last_update,
        }

    @classmethod
    def from_dict(cls, params: BaselineParams, data: dict[str, Any]) -> Baseline:
        """A baseline with stored state and the current params."""
        return cls(
            params,
            level=data.get("level"),
            spread=float(data.get("spread", 0.0)),
            hours=list(data.get("hours") or [None] * 24),
            days=list(data.get("days") or [None] * 7),
            hour_visits=list(data.get("hour_visits") or [0] * 24),
            day_visits=list(data.get("day_visits") or [0] * 7),
            recent=list(data.get("recent") or []),
            updates=int(data.get("updates", 0)),
            last_update=data.get("last_update"),
        )
