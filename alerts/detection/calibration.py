"""Alert levels calibrated to a notification budget, from the series' own surges (pure).

A team says how many notifications a week a brand and platform may cost (``alerts.yaml:
budget``); this turns that into the level a rule's score must reach, for each series on its own,
so a brand of any size and burstiness gets its own level. The method is peaks over threshold
with runs declustering (Coles, *An Introduction to Statistical Modeling of Extreme Values*, 2001,
ch. 4-5) as in SPOT/DSPOT (Siffer et al., KDD 2017), with one change that matters for pages:

- The score (spreads from the learned baseline) is cut into *surges*: a surge starts when the
  score goes over ``threshold`` and ends after ``gap`` below it; only its peak is kept. A news
  burst with aftershocks is one surge, as it is one page (SPOT counts every sample over the
  threshold, which for minute-by-minute scores counts one burst many times over).
- The surge peaks' excesses over ``threshold`` are fitted with a generalised Pareto distribution
  (probability-weighted moments, Hosking & Wallis 1987: closed form, no optimiser to diverge on
  a handful of peaks). With ``rate`` surges a week, the level reached ``budget`` times a week is
  ``threshold + sigma / xi * ((rate / budget) ** xi - 1)`` (``sigma * log(rate / budget)`` at
  ``xi = 0``).

The budget is a ceiling, not a quota: a quiet series whose surges are rarer than the budget is
paged at ``threshold``, and never below the configured significance floor (callers apply it).
Peaks are kept for ``horizon`` of observed time, so the level follows a brand that grows calmer
or burstier; time without data (gaps) is not observed time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

WEEK = 7 * 86400.0
# Probability-weighted moments estimate the shape for xi < 0.5 only; beyond it the tail is so
# heavy that the level is not finite in the data's own terms, so the estimate is held there.
MAX_SHAPE = 0.45
MIN_SHAPE = -0.5
# Fewer surge peaks than this are not fitted: the level is the threshold when they are rarer
# than the budget, and unknown (the caller's start level) when they are not.
MIN_PEAKS = 5


@dataclass(frozen=True)
class CalibrationParams:
    """How surges are cut and how long they are remembered."""

    threshold: float = 2.0  # score where a surge starts (spreads from the baseline)
    gap: float = 3 * 3600.0  # this long below the threshold ends a surge
    horizon: float = 8 * WEEK  # observed time the peaks are kept for
    min_observed: float = 3 * 86400.0  # before this much observed time: no calibrated level
    max_step: float = 900.0  # a longer pause between scores is a gap, not observed time


def fit_tail(excesses: list[float]) -> tuple[float, float]:
    """(shape xi, scale sigma) of a generalised Pareto fit to positive excesses, by
    probability-weighted moments; the shape held within [MIN_SHAPE, MAX_SHAPE]."""
    x = sorted(excesses)
    n = len(x)
    if n < 2:
        raise ValueError("fitting a tail needs at least two excesses")
    mean = sum(x) / n
    # a1 = E[X (1 - F(X))], unbiased from the order statistics.
    a1 = sum(x[i] * (n - 1 - i) for i in range(n)) / (n * (n - 1))
    if mean <= 0 or mean - 2 * a1 <= 0:
        return 0.0, max(mean, 1e-9)
    k = mean / (mean - 2 * a1) - 2  # Hosking's k; xi = -k
    xi = min(max(-k, MIN_SHAPE), MAX_SHAPE)
    # The scale that goes with the held shape keeps the fitted mean excess: sigma = mean (1 - xi).
    sigma = mean * (1 - xi)
    return xi, max(sigma, 1e-9)


def level_for(peaks: list[float], threshold: float, weeks: float, budget: float) -> float | None:
    """The score reached ``budget`` times a week by surges peaking at ``peaks`` over ``weeks``
    of observation; None when there are too few peaks to say (and more surges than budget)."""
    if weeks <= 0 or budget <= 0:
        return None
    rate = len(peaks) / weeks
    if rate <= budget:
        return threshold
    if len(peaks) < MIN_PEAKS:
        return None
    xi, sigma = fit_tail([p - threshold for p in peaks])
    ratio = rate / budget
    if abs(xi) < 1e-6:
        return threshold + sigma * math.log(ratio)
    return threshold + sigma / xi * (ratio**xi - 1)


@dataclass
class Calibration:
    """One rule's surges on one series; serialisable with :meth:`to_dict` / :meth:`from_dict`."""

    observed: float = 0.0  # seconds of observed time so far (gaps excluded)
    peaks: list[tuple[float, float]] = field(default_factory=list)  # (observed clock, peak)
    surge_peak: float | None = None  # the surge under way, if any
    below_since: float | None = None  # observed clock since the score fell below the threshold
    last_ts: float | None = None

    def level(self, params: CalibrationParams, budget: float) -> float | None:
        """The calibrated level for ``budget`` notifications a week, or None while too little
        was observed. Computed from past scores only (call before :meth:`observe`)."""
        if self.observed < params.min_observed:
            return None
        weeks = min(self.observed, params.horizon) / WEEK
        return level_for([p for _, p in self.peaks], params.threshold, weeks, budget)

    def observe(self, params: CalibrationParams, ts: float, score: float | None) -> None:
        """Fold the score at ``ts`` in (None: no score, e.g. too little volume, counts as below
        the threshold)."""
        if self.last_ts is not None and ts <= self.last_ts:
            return
        if self.last_ts is not None:
            self.observed += min(ts - self.last_ts, params.max_step)
        self.last_ts = ts
        clock = self.observed
        if score is not None and score > params.threshold:
            self.surge_peak = score if self.surge_peak is None else max(self.surge_peak, score)
            self.below_since = None
        elif self.surge_peak is not None:
            self.below_since = clock if self.below_since is None else self.below_since
            if clock - self.below_since >= params.gap:
                self.peaks.append((self.below_since, self.surge_peak))
                self.surge_peak, self.below_since = None, None
        oldest = clock - params.horizon
        if self.peaks and self.peaks[0][0] < oldest:
            self.peaks = [(at, p) for at, p in self.peaks if at >= oldest]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "observed": self.observed,
            "peaks": [[at, p] for at, p in self.peaks],
            "surge_peak": self.surge_peak,
            "below_since": self.below_since,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """State from :meth:`to_dict`'s output."""
        return cls(
            observed=float(data.get("observed", 0.0)),
            peaks=[(float(at), float(p)) for at, p in data.get("peaks") or []],
            surge_peak=data.get("surge_peak"),
            below_since=data.get("below_since"),
            last_ts=data.get("last_ts"),
        )
