"""The detection engine: every rule of every brand on one tick (pure, no I/O).

The live worker (alerts.pipeline) and ``socialpulse backtest`` (alerts.detection.backtest)
both feed it ticks on the same grid (multiples of ``evaluation.every``) with the counts of the
windows ending at each tick, so they produce the same firings from the same events. At a tick,
every rule is first checked against the baselines as they were, then the tick's values are
learned: a firing never depends on data from after its timestamp.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.detection.baseline import Baseline, BaselineParams, Expected
from alerts.detection.budget import BudgetSettings
from alerts.detection.calibration import Calibration
from alerts.detection.rule_check import (
    AlertEvent,
    Check,
    Reading,
    RuleState,
    advance,
    alert_event,
    check,
    trigger_levels,
)
from alerts.detection.rules import BaselineSettings, Rule, transform_for
from streams.counters import ALL_PLATFORMS, ONE_PER_EVENT, WindowCounts
from streams.formulas import Value
from streams.kpis import DerivedKpi, brand_snapshots, with_competitor_mentions
from streams.windows import TIERS, bucket_start, tier_for

# The one "platform" of a single KPI series given to the backtest as timestamp,value.
SERIES = "series"
# platform -> KPI or counter name -> value, for one brand and window
Values = Mapping[str, Mapping[str, Value]]


def read_time(tick: float, window_seconds: int) -> float:
    """The ``now`` to read a window at for a tick: just before the last bucket boundary at or
    before the tick, so the window holds complete buckets only (events up to the boundary)."""
    tier = tier_for(window_seconds) or TIERS[0]
    return bucket_start(tick, tier) - 1


@dataclass(frozen=True)
class RuleShown:
    """What /metrics shows of one rule on one platform: whether it fires, the KPI values at
    which its condition is over (by bound), and a calibrated rule's (level in spreads, budget
    a week)."""

    firing: bool
    levels: Mapping[str, float]
    calibrated: tuple[float, float] | None


@dataclass
class Shown:
    """What /metrics shows of a brand at ``at``: its rules by (rule, platform), and its ready
    baselines' expected values by baseline key."""

    at: float
    rules: dict[tuple[str, str], RuleShown] = field(default_factory=dict)
    baselines: dict[str, Expected] = field(default_factory=dict)


@dataclass
class BrandState:
    """A brand's detection state: rule states, baselines and the last tick evaluated."""

    rules: dict[str, RuleState] = field(default_factory=dict)  # "<rule>|<platform>"
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<kpi>|<window>|<pl>"
    cursor: float | None = None
    started: float | None = None
    live: dict[str, Baseline] = field(default_factory=dict, repr=False)  # loaded baselines
    # Fields of backfilled baselines taken over from `socialpulse baseline backfill`: the save
    # that stores them as the baselines removes these.
    backfills: list[str] = field(default_factory=list)
    # What the last tick judged by (Detector.tick sets it; not stored).
    shown: Shown | None = field(default=None, repr=False)
    # Per baseline key, its JSON as last read or written and the version it is of.
    encoded: dict[str, tuple[tuple[Any, Any], str]] = field(default_factory=dict, repr=False)

    def baseline_states(self) -> dict[str, dict[str, Any]]:
        """Every baseline's state, with the loaded ones refreshed."""
        return {**self.baselines, **{k: b.to_dict() for k, b in self.live.items()}}


class Detector:
    """Rules and baseline settings, applied tick by tick to brands' values."""

    def __init__(
        self,
        rules: Sequence[Rule],
        baselines: BaselineSettings,
        units: Mapping[str, str],
        budget: BudgetSettings | None = None,
        shared_with: Sequence[Rule] | None = None,
    ):
        self.rules = list(rules)
        # The rules a severity's budget is shared among: all configured ones, also when only
        # some are evaluated (a backtest of one KPI).
        self.shared_with = list(shared_with) if shared_with is not None else self.rules
        self.settings = baselines
        self.units = units  # KPI name -> unit; counters are counts
        self.budget = budget or BudgetSettings()
        # Scores come every tick (10 s live) and a baseline sample every update_every (the
        # step of a backtest's series or a backfill's replay).
        self.calibration = self.budget.params(baselines.update_every)
        self._shares: dict[tuple[str, str, str], float] = {}
        # By what decides it: a rule holds lists (brands, platforms), so is not hashable.
        self._learned: dict[tuple[Any, ...], list[str]] = {}

    def share(self, rule: Rule, brand: str, platform: str, platforms: Sequence[str]) -> float:
        """The notifications a week the calibrated ``rule`` may cost on the brand's platform."""
        key = (rule.name, brand, platform)
        if key not in self._shares:
            here = [
                r
                for r in self.shared_with
                if (r.brands is None or brand in r.brands)
                and platform in rule_platforms(r, platforms)
            ]
            self._shares[key] = self.budget.share(rule, here, brand, platform)
        return self._shares[key]

    def calibrated(
        self, rule: Rule, state: RuleState | None, share: float
    ) -> tuple[float, float] | None:
        """A calibrated rule's (level, surge end) in spreads now: the level its series' surges
        reach ``share`` times a week, never under ``budget.min_z``; ``budget.start_z`` while
        the series is being learned. None for rules with a hand-set level."""
        if not rule.calibrated:
            return None
        calibration = state.calibration if state is not None else None
        level = calibration.level(self.calibration, share) if calibration else None
        level = self.budget.start_z if level is None else max(level, self.budget.min_z)
        return level, self.calibration.threshold

    def windows(self) -> list[int]:
        """Rolling windows the rules read."""
        return sorted({rule.window for rule in self.rules})

    def rules_for(self, brand: str) -> list[Rule]:
        """The rules that apply to a brand."""
        return [r for r in self.rules if r.brands is None or brand in r.brands]

    def baseline_params(self, kpi: str) -> BaselineParams:
        """How a KPI's baselines learn (counts on the square-root scale)."""
        return self.settings.params(transform_for(kpi, self.units.get(kpi)))

    def baseline(self, state: BrandState, kpi: str, window: int, platform: str) -> Baseline:
        """The brand's baseline of a KPI over a window on a platform (new when none yet)."""
        key = baseline_key(kpi, window, platform)
        if key not in state.live:
            params = self.baseline_params(kpi)
            stored = state.baselines.get(key)
            state.live[key] = Baseline.from_dict(params, stored) if stored else Baseline(params)
        return state.live[key]

    def learned(self, rule: Rule) -> list[str]:
        """KPIs the rule needs baselines of."""
        key = (
            rule.kind,
            rule.kpi,
            rule.share_kpi,
            rule.volume_kpi,
            rule.min_volume,
            rule.direction,
        )
        names = self._learned.get(key)
        if names is None:
            names = self._learned[key] = self._learned_by(rule)
        return names

    @staticmethod
    def _learned_by(rule: Rule) -> list[str]:
        names = [rule.kpi] if rule.uses_baseline else []
        if rule.kind == "negative_spike":
            names.append(rule.share_kpi)
        if rule.min_volume and (rule.direction != "up" or rule.kind == "absence"):
            names.append(rule.volume_kpi)
        return list(dict.fromkeys(names))

    def tick(
        self,
        brand: str,
        ts: float,
        platforms: Sequence[str],
        values: Mapping[int, Values],
        state: BrandState,
    ) -> list[AlertEvent]:
        """Evaluate the brand's rules at tick ``ts`` on ``values`` (per window), then learn."""
        events: list[AlertEvent] = []
        learn: dict[tuple[str, int, str], Value] = {}
        shown = Shown(ts)
        for rule in self.rules_for(brand):
            rows = values.get(rule.window, {})
            for platform in rule_platforms(rule, platforms):
                row = rows.get(platform, {})
                learned = self.learned(rule)
                rule_state = state.rules.setdefault(f"{rule.name}|{platform}", RuleState())
                before = None
                if rule.kind == "rate_of_change":
                    assert rule.over is not None
                    before = rule_state.value_before(ts, rule.over)
                    rule_state.remember(ts, row.get(rule.kpi), rule.over)
                reading, share = self._reading(
                    rule, brand, platform, platforms, ts, row, state, before
                )
                value, calibrated = reading.value, reading.calibrated
                verdict = check(rule, reading)
                surge = rule_state.calibration
                if rule_state.paged_surge and surge is not None and surge.surge_peak is not None:
                    # One surge, one page: the surge it paged for has not ended yet.
                    verdict = replace(verdict, over=False)
                event = advance(rule, rule_state, ts, verdict, brand, platform)
                if event and event.event == "fired" and rule.calibrated:
                    rule_state.paged_surge = True
                if rule_state.early is not None and rule_state.early <= ts:
                    event = _after_early(rule, rule_state, ts, verdict, event, brand, platform)
                learning = reading.expected is not None and reading.expected.ready
                if rule.calibrated and learning and value is not None:
                    # Learned after the check: the level never uses the tick's own score.
                    if rule_state.calibration is None:
                        rule_state.calibration = Calibration()
                    rule_state.calibration.observe(
                        self.calibration, ts, surge_score(rule, verdict.score)
                    )
                    if rule_state.calibration.surge_peak is None:
                        rule_state.paged_surge = False
                levels = trigger_levels(rule, reading.expected, before, calibrated)
                if event:
                    level = levels.get("lower" if rule.direction == "down" else "upper")
                    events.append(replace(event, level=level))
                shown.rules[(rule.name, platform)] = RuleShown(
                    rule_state.status == "firing",
                    levels,
                    (calibrated[0], share) if calibrated else None,
                )
                for kpi in learned:
                    learn[(kpi, rule.window, platform)] = row.get(kpi)
        for (kpi, window, platform), value in learn.items():
            baseline = self.baseline(state, kpi, window, platform)
            if value is not None and baseline.due(ts):
                baseline.update(ts, value)
            now_expected = baseline.expected(ts)
            if now_expected is not None and now_expected.ready:
                shown.baselines[baseline_key(kpi, window, platform)] = now_expected
        state.shown = shown
        state.cursor = ts
        state.started = ts if state.started is None else state.started
        return events

    def _reading(
        self,
        rule: Rule,
        brand: str,
        platform: str,
        platforms: Sequence[str],
        ts: float,
        row: Mapping[str, Value],
        state: BrandState,
        before: float | None,
    ) -> tuple[Reading, float]:
        """What the rule sees on the platform's row at ``ts``, and its share of the budget."""
        rule_state = state.rules.get(f"{rule.name}|{platform}")

        def expected(kpi: str) -> Expected | None:
            return self.baseline(state, kpi, rule.window, platform).expected(ts)

        calibrated = None
        share = 0.0
        if rule.calibrated:
            share = self.share(rule, brand, platform, platforms)
            calibrated = self.calibrated(rule, rule_state, share)
        reading = Reading(
            value=row.get(rule.kpi),
            volume=float(row.get(rule.volume_kpi) or 0),
            expected=expected(rule.kpi) if rule.uses_baseline else None,
            # Only rules that judge volume by its usual level learn a baseline of it.
            volume_expected=(
                expected(rule.volume_kpi) if rule.volume_kpi in self.learned(rule) else None
            ),
            share=row.get(rule.share_kpi) if rule.kind == "negative_spike" else None,
            share_expected=expected(rule.share_kpi) if rule.kind == "negative_spike" else None,
            value_before=before,
            calibrated=calibrated,
        )
        return reading, share

    def early_rules(self, every: int) -> list[Rule]:
        """The rules that can fire before their tick's window is complete: rising ones
        (threshold, deviation, percent change up) on counters every event adds one to, whose
        windows are read from the finest buckets with and without the tick's last ``every``
        seconds. More events can only raise such a window's count, so a level it holds part
        way through the tick it holds at the tick."""
        finest = TIERS[0]
        return [
            rule
            for rule in self.rules
            if rule.direction == "up"
            and rule.kind in ("threshold", "deviation", "percent_change")
            and rule.kpi in ONE_PER_EVENT
            and (rule.min_volume <= 0 or rule.volume_kpi in ONE_PER_EVENT)
            and rule.window > every
            and tier_for(rule.window) == finest
            and tier_for(rule.window - every) == finest
        ]

    def early(
        self,
        brand: str,
        ts: float,
        platforms: Sequence[str],
        values: Mapping[int, Values],
        state: BrandState,
        rules: Sequence[Rule],
    ) -> list[AlertEvent]:
        """The firings at the coming tick ``ts`` that the counts so far already decide:
        ``values`` (per window) hold the early ``rules``' counters over each window ending at
        ``ts`` as counted until now. The rule's state is not advanced (the tick does that), only
        marked (:attr:`RuleState.early`), so the tick's own firing is not sent again and a
        second look before the tick fires nothing more."""
        events: list[AlertEvent] = []
        for rule in rules:
            if rule.brands is not None and brand not in rule.brands:
                continue
            rows = values.get(rule.window, {})
            for platform in rule_platforms(rule, platforms):
                rule_state = state.rules.setdefault(f"{rule.name}|{platform}", RuleState())
                surge = rule_state.calibration
                if rule_state.paged_surge and surge is not None and surge.surge_peak is not None:
                    continue  # one surge, one page (as at the tick)
                if rule_state.early == ts or rule_state.status == "firing":
                    continue  # fired early already, or firing: it cannot fire at this tick
                reading, _ = self._reading(
                    rule, brand, platform, platforms, ts, rows.get(platform, {}), state, None
                )
                verdict = check(rule, reading)
                if not verdict.over:
                    continue  # a rule fires only when over (advance); most looks end here
                # On a copy: the tick moves the state machine, from the state it had.
                event = advance(rule, replace(rule_state), ts, verdict, brand, platform)
                if event is None or event.event != "fired":
                    continue
                rule_state.early = ts
                levels = trigger_levels(rule, reading.expected, None, reading.calibrated)
                events.append(replace(event, level=levels.get("upper")))
        return events

    def shown_now(
        self, brand: str, platforms: Sequence[str], state: BrandState, now: float
    ) -> Shown:
        """What /metrics shows of a stored state at ``now`` (for a worker that does not
        evaluate, so has no tick's :attr:`BrandState.shown`); changes nothing stored."""
        shown = Shown(now)
        for rule in self.rules_for(brand):
            for platform in rule_platforms(rule, platforms):
                rule_state = state.rules.get(f"{rule.name}|{platform}")
                baseline = self.baseline(state, rule.kpi, rule.window, platform)
                before = None
                if rule.over is not None and rule_state is not None:
                    before = rule_state.value_before(now, rule.over)
                at = None
                if rule.calibrated:
                    share = self.share(rule, brand, platform, platforms)
                    level = self.calibrated(rule, rule_state, share)
                    assert level is not None
                    at = (level[0], share)
                    levels = trigger_levels(rule, baseline.expected(now), before, level)
                else:
                    levels = trigger_levels(rule, baseline.expected(now), before, None)
                firing = rule_state is not None and rule_state.status == "firing"
                shown.rules[(rule.name, platform)] = RuleShown(firing, levels, at)
        for key in state.baselines:
            kpi, window, platform = key.split("|")
            expected = self.baseline(state, kpi, int(window), platform).expected(now)
            if expected is not None and expected.ready:
                shown.baselines[key] = expected
        return shown


def _after_early(
    rule: Rule,
    state: RuleState,
    ts: float,
    verdict: Check,
    event: AlertEvent | None,
    brand: str,
    platform: str,
) -> AlertEvent | None:
    """The tick's event for a rule that fired early (at tick ``state.early``): the firing
    already sent, as its confirmation (the complete window's figures); a clearing if the
    complete window did not fire after all (counts that fell: a key that expired, a state
    handed over), so its incident does not stay open."""
    early, state.early = state.early, None
    assert early is not None
    if event is not None and event.event == "fired":
        # Its own tick (or, after an outage longer than max_catch_up skipped that tick, the
        # first one evaluated): the firing was sent, its incident is open.
        return replace(event, confirms=True)
    if event is None and state.status != "firing":
        return alert_event("cleared", rule, ts, verdict, (brand, platform), early, early)
    return event


def surge_score(rule: Rule, score: float | None) -> float | None:
    """A score in the rule's direction (falls count as positive for a "down" rule)."""
    if score is None:
        return None
    if rule.direction == "down":
        return -score
    return abs(score) if rule.direction == "both" else score


def baseline_key(kpi: str, window: int, platform: str) -> str:
    """Where a baseline is kept in a brand's state."""
    return f"{kpi}|{window}|{platform}"


def rule_platforms(rule: Rule, platforms: Sequence[str]) -> list[str]:
    """The platforms (rows) a rule is evaluated on, of a brand with these platforms."""
    if list(platforms) == [SERIES]:
        return [SERIES]
    if rule.platforms == "each":
        return [p for p in platforms if p != ALL_PLATFORMS]
    if rule.platforms == "all":
        return [ALL_PLATFORMS]
    return list(rule.platforms)


def brand_values(
    brands: Iterable[tuple[str, Sequence[str]]],
    competitors: Mapping[str, Sequence[str]],
    kpis: Sequence[DerivedKpi],
    counts: Mapping[tuple[str, int], WindowCounts],
    only: Collection[str] | None = None,
) -> dict[str, tuple[list[str], dict[int, Values]]]:
    """Per brand: its platform rows, and per window each platform's counters and KPIs (as
    ``socialpulse kpis`` and /metrics compute them, "all" included); ``only``: the counters
    wanted (the KPIs' formulas among them), all by default."""
    counts = with_competitor_mentions(counts, competitors)
    windows_of: dict[str, dict[int, WindowCounts]] = {}
    for (b, w), c in counts.items():
        windows_of.setdefault(b, {})[w] = c
    result: dict[str, tuple[list[str], dict[int, Values]]] = {}
    for brand, configured in brands:
        by_window = windows_of.get(brand, {})
        snapshots = brand_snapshots(brand, by_window, configured, kpis, only)
        platforms: list[str] = []
        values: dict[int, Values] = {}
        for window, snap in snapshots.items():
            platforms = list(snap.platforms)
            rows: dict[str, dict[str, Value]] = {
                p: {**snap.counters[p], **snap.derived[p]} for p in snap.platforms
            }
            rows[ALL_PLATFORMS] = {**snap.totals, **snap.derived[ALL_PLATFORMS]}
            values[window] = rows
        result[brand] = (platforms, values)
    return result
