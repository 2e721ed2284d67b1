"""One rule on one series: is its condition over or clear at a tick, and the firing state
machine with hold, hysteresis and cooldown (pure; live evaluation and backtest share it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from alerts.detection.baseline import Expected
from alerts.detection.calibration import Calibration
from alerts.detection.rules import Rule

# Below this expected value a percent change is meaningless (0 -> 1 is "infinite").
MIN_PERCENT_BASE = 1e-9
# The negative share's binomial spread never goes below this, so a 0% baseline does not make
# one negative mention a 10-sigma event.
MIN_SHARE_VARIANCE = 0.05 * 0.95


@dataclass(frozen=True)
class Reading:
    """What a rule sees at a tick: the KPI now, its volume, and the baselines (before the tick's
    own value is learned, so a firing never uses data from after its timestamp)."""

    value: float | None
    volume: float
    expected: Expected | None = None
    volume_expected: Expected | None = None
    share: float | None = None  # negative_spike: negative share now
    share_expected: Expected | None = None
    value_before: float | None = None  # rate_of_change: the value `over` ago
    # calibrated rules: (level, where a surge ends) in spreads now (alerts.detection.calibration)
    calibrated: tuple[float, float] | None = None


@dataclass(frozen=True)
class Check:
    """The rule's verdict at one tick. ``over`` fires (after the hold), ``clear`` clears; in
    between (hysteresis) nothing changes."""

    over: bool
    clear: bool
    score: float | None = None  # z, percent, or the value, by kind
    baseline: float | None = None  # the expected value, in the KPI's units
    value: float | None = None  # the KPI's value at the tick


QUIET = Check(over=False, clear=True)


def _directed(rule: Rule, score: float, trigger: float, clear: float) -> Check:
    up = Check(score >= trigger, score < clear, score)
    down = Check(score <= -trigger, score > -clear, score)
    if rule.direction == "up":
        return up
    if rule.direction == "down":
        return down
    return Check(up.over or down.over, up.clear and down.clear, score)


def _enough_volume(rule: Rule, reading: Reading) -> bool:
    if rule.min_volume <= 0:
        return True
    now_ok = reading.volume >= rule.min_volume
    expected = reading.volume_expected
    usual_ok = expected is not None and expected.value >= rule.min_volume
    if rule.kind == "absence" or rule.direction == "down":
        return usual_ok
    if rule.direction == "both":
        return now_ok or usual_ok
    return now_ok


def check(rule: Rule, reading: Reading) -> Check:
    """Whether the rule's condition is over its trigger or under its clear level now."""
    verdict = _check(rule, reading)
    # Built, not dataclasses.replace()-d: that cost a tenth of an evaluation round.
    return Check(verdict.over, verdict.clear, verdict.score, verdict.baseline, reading.value)


def _check(rule: Rule, reading: Reading) -> Check:
    if not _enough_volume(rule, reading):
        return QUIET
    trigger, clear = rule.trigger_clear(reading.calibrated)
    value, expected = reading.value, reading.expected
    if rule.kind == "threshold":
        if value is None:
            return QUIET
        if rule.direction == "down":
            return Check(value <= trigger, value > clear, value)
        return Check(value >= trigger, value < clear, value)
    if rule.kind == "rate_of_change":
        before = reading.value_before
        if value is None or before is None:
            return QUIET
        # From a quiet start every rise is "infinite"; measure it from at least min_volume.
        base = max(abs(before), rule.min_volume, MIN_PERCENT_BASE)
        percent = (value - before) / base * 100
        return _directed(rule, percent, trigger, clear)
    if expected is None or not expected.ready:
        return QUIET  # learned baselines warm up before they judge anything
    if rule.kind == "absence":
        # No data (a gap in a series) is not silence; a counted zero is.
        silent = value is not None and value == 0
        return Check(silent, not silent, value, expected.value)
    if value is None:
        return Check(False, True, None, expected.value)
    if rule.kind == "percent_change":
        if expected.value <= MIN_PERCENT_BASE:
            return Check(False, True, None, expected.value)
        percent = (value - expected.value) / expected.value * 100
        checked = _directed(rule, percent, trigger, clear)
    elif rule.kind == "deviation":
        checked = _directed(rule, expected.z(value), trigger, clear)
    else:
        checked = _negative_spike(rule, reading, expected, value, trigger, clear)
    return Check(checked.over, checked.clear, checked.score, expected.value)


def _negative_spike(
    rule: Rule, reading: Reading, expected: Expected, negative: float, trigger: float, clear: float
) -> Check:
    """Negative count and negative share both above their baselines."""
    share, usual = reading.share, reading.share_expected
    if share is None or usual is None or not usual.ready or reading.volume <= 0:
        return QUIET
    p0 = min(max(usual.value, 0.0), 1.0)
    spread = math.sqrt(max(p0 * (1 - p0), MIN_SHARE_VARIANCE) / reading.volume)
    share_z = (share - p0) / spread
    count_z = expected.z(negative)
    score = min(count_z, share_z)
    rise_ok = share - p0 >= rule.min_share_rise
    return Check(score >= trigger and rise_ok, score < clear or not rise_ok, score)


def trigger_levels(
    rule: Rule,
    expected: Expected | None,
    value_before: float | None = None,
    calibrated: tuple[float, float] | None = None,
) -> dict[str, float]:
    """The KPI values at which the rule's condition is over now, by bound ("upper" for rises,
    "lower" for falls), for drawing beside the KPI; empty while its baseline warms up. The
    negative-spike rule also needs the share to rise; its levels are those of the count.
    ``calibrated``: a calibrated rule's (level, surge end) now."""
    trigger, _ = rule.trigger_clear(calibrated)
    if math.isinf(trigger):
        return {}
    if rule.kind == "threshold":
        return {"lower" if rule.direction == "down" else "upper": trigger}
    if rule.kind == "rate_of_change":
        if value_before is None:
            return {}
        step = max(abs(value_before), rule.min_volume, MIN_PERCENT_BASE) * trigger / 100
        levels = {"upper": value_before + step, "lower": value_before - step}
    elif expected is None or not expected.ready or rule.kind == "absence":
        return {}
    elif rule.kind == "percent_change":
        if expected.value <= MIN_PERCENT_BASE:
            return {}
        change = expected.value * trigger / 100
        levels = {"upper": expected.value + change, "lower": expected.value - change}
    else:
        low, high = expected.band(trigger)
        levels = {"upper": high, "lower": low}
    if rule.direction == "both":
        return levels
    bound = "upper" if rule.direction == "up" else "lower"
    return {bound: levels[bound]}


@dataclass(frozen=True)
class AlertEvent:
    """A rule firing or clearing for a brand and platform: what the incident layer consumes."""

    event: Literal["fired", "cleared"]
    rule: str
    kind: str
    severity: str
    brand: str
    platform: str
    kpi: str
    window: int
    at: float  # the tick (unix seconds) whose data decided it
    value: float | None
    baseline: float | None
    score: float | None
    since: float  # when the condition started to hold
    fired_at: float | None = None  # cleared events: when it fired
    level: float | None = None  # the KPI value the rule fires at (see trigger_levels)
    # fired: the tick's own firing of one sent before the tick's window was complete (its
    # complete figures, for the incident's message; nobody is notified again)
    confirms: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``confirms`` only when set: what an older release reads)."""
        data = asdict(self)
        if not self.confirms:
            del data["confirms"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertEvent:
        """The event from :meth:`to_dict`'s output."""
        return cls(**data)


@dataclass
class RuleState:
    """Where one rule stands for one brand and platform; serialisable."""

    status: Literal["ok", "pending", "firing"] = "ok"
    since: float | None = None  # condition holding since (pending, firing)
    fired_at: float | None = None
    clear_since: float | None = None
    quiet_until: float = 0.0  # cooldown after clearing
    history: list[tuple[float, float | None]] = field(default_factory=list)  # rate_of_change
    calibration: Calibration | None = None  # calibrated rules: the series' surges
    paged_surge: bool = False  # calibrated rules: fired in the surge under way
    early: float | None = None  # the tick it fired for before that tick's window was complete

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (written out: asdict's deep copy was most of a save of many
        brands)."""
        return {
            "status": self.status,
            "since": self.since,
            "fired_at": self.fired_at,
            "clear_since": self.clear_since,
            "quiet_until": self.quiet_until,
            "history": [[t, v] for t, v in self.history],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "paged_surge": self.paged_surge,
            # Only when set: a state without it is what an older release reads (a rollback).
            **({"early": self.early} if self.early is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleState:
        """State from :meth:`to_dict`'s output."""
        state = cls(**data)
        state.history = [(float(t), v) for t, v in state.history]
        if isinstance(state.calibration, dict):
            state.calibration = Calibration.from_dict(state.calibration)
        return state

    def value_before(self, ts: float, over: int) -> float | None:
        """The newest remembered value at least ``over`` seconds before ``ts``."""
        older = [v for t, v in self.history if t <= ts - over]
        return older[-1] if older else None

    def remember(self, ts: float, value: float | None, over: int) -> None:
        """Keep values back to ``over`` seconds (and one older) for rate-of-change rules."""
        self.history.append((ts, value))
        keep = [i for i, (t, _) in enumerate(self.history) if t <= ts - over]
        if keep:
            del self.history[: keep[-1]]


def alert_event(
    kind: Literal["fired", "cleared"],
    rule: Rule,
    ts: float,
    verdict: Check,
    where: tuple[str, str],
    since: float,
    fired_at: float | None = None,
) -> AlertEvent:
    """The rule's firing or clearing at ``ts`` for ``where`` (brand, platform)."""
    brand, platform = where
    return AlertEvent(
        kind,
        rule.name,
        rule.kind,
        rule.severity,
        brand,
        platform,
        rule.kpi,
        rule.window,
        ts,
        verdict.value,
        verdict.baseline,
        verdict.score,
        since,
        fired_at,
    )


def advance(
    rule: Rule, state: RuleState, ts: float, verdict: Check, brand: str, platform: str
) -> AlertEvent | None:
    """Move the state machine one tick; return the firing or clearing it causes, if any."""

    def event(kind: Literal["fired", "cleared"], since: float) -> AlertEvent:
        fired_at = state.fired_at if kind == "cleared" else None
        return alert_event(kind, rule, ts, verdict, (brand, platform), since, fired_at)

    if state.status == "firing":
        if not verdict.clear:
            state.clear_since = None
            return None
        state.clear_since = state.clear_since if state.clear_since is not None else ts
        if ts - state.clear_since < (rule.clear_for or 0):
            return None
        cleared = event("cleared", state.since or ts)
        state.status, state.since, state.fired_at, state.clear_since = "ok", None, None, None
        state.quiet_until = ts + (rule.cooldown or 0)
        return cleared
    if not verdict.over or ts < state.quiet_until:
        state.status, state.since = "ok", None
        return None
    if state.status == "ok":
        state.status, state.since = "pending", ts
    assert state.since is not None
    if ts - state.since < rule.hold_seconds:
        return None
    state.status, state.fired_at, state.clear_since = "firing", ts, None
    return event("fired", state.since)
