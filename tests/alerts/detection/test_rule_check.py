"""The rule state machine and each rule kind's condition (pure)."""

from __future__ import annotations

from alerts.detection.baseline import Expected
from alerts.detection.rule_check import (
    AlertEvent,
    Check,
    Reading,
    RuleState,
    advance,
    check,
    trigger_levels,
)
from alerts.detection.rules import Rule


def rule(**kwargs: object) -> Rule:
    return Rule.model_validate({"name": "r", "kind": "threshold", "value": 10, **kwargs})


def run(r: Rule, values: list[float | None], **reading: object) -> list[tuple[str, int, int]]:
    """Feed one value per 10 s tick; return (event, tick, since) of what happened."""
    state = RuleState()
    seen = []
    for i, value in enumerate(values):
        ts = 10.0 * (i + 1)
        verdict = check(r, Reading(value=value, volume=value or 0, **reading))  # type: ignore[arg-type]
        event = advance(r, state, ts, verdict, "acme", "x")
        if event:
            seen.append((event.event, int(event.at), int(event.since)))
    return seen


def test_threshold_fires_after_the_hold_and_clears_below_the_clear_value_only() -> None:
    r = rule(value=10, clear_value=5, **{"for": "20s"})
    # 12 at ticks 10,20,30: holds 20 s at tick 30. 7 is between clear and trigger: still firing.
    assert run(r, [12, 12, 12, 7, 7, 4]) == [("fired", 30, 10), ("cleared", 60, 10)]


def test_a_condition_that_does_not_hold_long_enough_never_fires() -> None:
    r = rule(value=10, **{"for": "30s"})
    assert run(r, [12, 12, 3, 12, 12, 12, 3]) == []


def test_default_hysteresis_is_a_fifth_of_the_threshold() -> None:
    r = rule(value=10)
    assert r.trigger_clear() == (10, 8)
    assert run(r, [10, 9, 8.5, 7.9]) == [("fired", 10, 10), ("cleared", 40, 10)]


def test_cooldown_keeps_a_flapping_condition_to_one_firing() -> None:
    r = rule(value=10, clear_value=5, cooldown="1m")
    values = [12, 1, 12, 1, 12, 1, 12, 12, 12]
    # Fires at 10, clears at 20; ticks 30..70 are within the cooldown; fires again at 80.
    assert run(r, values) == [("fired", 10, 10), ("cleared", 20, 10), ("fired", 80, 80)]


def test_direction_down_fires_on_low_values() -> None:
    r = rule(value=3, clear_value=6, direction="down")
    assert run(r, [10, 2, 5, 7]) == [("fired", 20, 20), ("cleared", 40, 20)]


def ready(value: float, spread: float = 1.0, transform: str = "none") -> Expected:
    return Expected(value, spread, transform, ready=True)  # type: ignore[arg-type]


def test_deviation_uses_the_baseline_spread_and_waits_for_warm_up() -> None:
    r = rule(kind="deviation", kpi="mentions", z=4, clear_z=1)
    assert check(r, Reading(14.5, 14.5, ready(10))) == Check(True, False, 4.5, 10, 14.5)
    assert check(r, Reading(12.0, 12, ready(10))) == Check(False, False, 2.0, 10, 12.0)
    assert check(r, Reading(10.5, 10.5, ready(10))) == Check(False, True, 0.5, 10, 10.5)
    cold = Expected(10, 1, "none", ready=False)
    assert check(r, Reading(50.0, 50, cold)).over is False


def test_counts_are_judged_on_the_square_root_scale() -> None:
    r = rule(kind="deviation", kpi="mentions", z=4)
    # Baseline 100 mentions (sqrt 10), spread 0.5: 144 is 2/0.5 = 4 spreads up.
    assert check(r, Reading(144.0, 144, ready(100, 0.5, "sqrt"))).score == 4.0


def test_min_volume_gates_up_rules_on_now_and_down_rules_on_the_baseline() -> None:
    up = rule(kind="deviation", kpi="mentions", z=2, min_volume=20)
    assert check(up, Reading(15.0, 15, ready(5))).over is False  # too few mentions now
    down = rule(kind="deviation", kpi="mentions", z=2, direction="down", min_volume=20)
    assert check(down, Reading(1.0, 1, ready(5), volume_expected=ready(5))).over is False
    assert check(down, Reading(1.0, 1, ready(30), volume_expected=ready(30))).over is True


def test_percent_change_against_the_baseline() -> None:
    r = rule(kind="percent_change", kpi="engagement_rate", percent=50, direction="down")
    verdict = check(r, Reading(0.01, 0, ready(0.04)))
    assert (verdict.over, verdict.score, verdict.baseline) == (True, -75.0, 0.04)
    assert check(r, Reading(0.03, 0, ready(0.04))).over is False


def test_negative_spike_needs_count_and_share_both_up() -> None:
    r = rule(kind="negative_spike", z=3, min_share_rise=0.1)
    count = ready(4.0, 0.5, "sqrt")  # 4 negative mentions usual
    share = ready(0.1)  # 10% negative usual
    # 36 negative of 100 mentions: count z = (6-2)/0.5 = 8; share 36% vs 10% of 100.
    assert check(r, Reading(36.0, 100, count, share=0.36, share_expected=share)).over is True
    # Same count, but volume grew with it (share 12%): not a crisis, just a busy day.
    assert check(r, Reading(36.0, 300, count, share=0.12, share_expected=share)).over is False


def test_rate_of_change_compares_with_the_value_over_ago() -> None:
    r = rule(kind="rate_of_change", kpi="mentions", percent=100, over="20s", min_volume=5)
    state = RuleState()
    fired = []
    for i, value in enumerate([10, 10, 10, 25, 30, 30, 30]):
        ts = 10.0 * (i + 1)
        before = state.value_before(ts, 20)
        state.remember(ts, float(value), 20)
        verdict = check(r, Reading(float(value), value, value_before=before))
        event = advance(r, state, ts, verdict, "acme", "x")
        if event:
            fired.append((event.event, int(ts), verdict.score))
    # 25 vs 10 twenty seconds before: +150%; 30 vs 25: +20%, under the clear level (50%).
    assert fired == [("fired", 40, 150.0), ("cleared", 60, 20.0)]


def test_absence_fires_only_where_data_is_usual() -> None:
    r = rule(kind="absence", kpi="mentions", min_volume=10, **{"for": "20s"})
    busy = {"expected": ready(40), "volume_expected": ready(40)}
    assert run(r, [0, 0, 0, 5], **busy) == [("fired", 30, 10), ("cleared", 40, 10)]
    lull = {"expected": ready(3), "volume_expected": ready(3)}
    assert run(r, [0, 0, 0, 0], **lull) == []


def test_events_and_states_round_trip_through_json_dicts() -> None:
    event = AlertEvent(
        "fired", "r", "threshold", "critical", "acme", "x", "m", 300, 10, 12, None, None, 5
    )
    assert AlertEvent.from_dict(event.to_dict()) == event
    state = RuleState("firing", 5, 10, None, 0, [(1.0, 2.0)])
    assert RuleState.from_dict(state.to_dict()) == state


def test_trigger_levels_are_where_each_kind_starts_to_fire() -> None:
    counts = Expected(100.0, 0.5, "sqrt", ready=True)  # centre 10 on the sqrt scale
    deviation = rule(kind="deviation", z=3, direction="both", value=None)
    assert trigger_levels(deviation, counts) == {"upper": 132.25, "lower": 72.25}
    up = rule(kind="deviation", z=3, value=None)
    assert trigger_levels(up, counts) == {"upper": 132.25}
    # At the level it fires; just inside it does not (the same maths as check()).
    assert check(up, Reading(value=132.25, volume=132.25, expected=counts)).over
    assert not check(up, Reading(value=132.0, volume=132.0, expected=counts)).over

    drop = rule(kind="percent_change", percent=50, direction="down", value=None)
    assert trigger_levels(drop, ready(200.0)) == {"lower": 100.0}
    assert check(drop, Reading(value=100.0, volume=1, expected=ready(200.0))).over
    assert not check(drop, Reading(value=101.0, volume=1, expected=ready(200.0))).over

    jump = rule(kind="rate_of_change", percent=300, over="5m", min_volume=50, value=None)
    # From 20 a rise is measured against min_volume 50: fires at 20 + 3 * 50.
    assert trigger_levels(jump, None, value_before=20.0) == {"upper": 170.0}
    assert trigger_levels(jump, None) == {}
    assert trigger_levels(rule(value=10), None) == {"upper": 10.0}
    assert trigger_levels(rule(value=3, direction="down"), None) == {"lower": 3.0}
    # Nothing to draw while the baseline warms up, nor for a feed-silence rule.
    warming = Expected(100.0, 0.5, "sqrt", ready=False)
    assert trigger_levels(up, warming) == {}
    silent = rule(kind="absence", value=None, **{"for": "15m"})
    assert trigger_levels(silent, counts) == {}
