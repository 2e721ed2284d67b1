"""Early firing: a rising rule on growing counts fires before its tick's window is complete,
with the tick's own firing, once (alerts.detection.engine.Detector.early)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detection.engine import BrandState, Detector
from alerts.detection.rule_check import AlertEvent, RuleState
from alerts.detection.rules import BaselineSettings, Rule
from tests.alerts.detection.shapes import shipped_detector

T0 = 1_767_225_600.0  # on the 10 s grid
EVERY = 10


def threshold(**extra: object) -> Rule:
    """A 5-minute negative-mentions threshold like the shipped one."""
    fields: dict[str, object] = {
        "name": "negative_high",
        "kind": "threshold",
        "kpi": "mentions_negative",
        "window": 300,
        "value": 80,
        "clear_value": 40,
        "severity": "critical",
        **extra,
    }
    return Rule.model_validate(fields)


def detector(*rules: Rule) -> Detector:
    return Detector(list(rules), BaselineSettings(), {})


def rows(negative: float | None) -> dict[int, dict[str, dict[str, float | None]]]:
    """One platform's (x) negative mentions over the 5-minute window."""
    row = {} if negative is None else {"mentions_negative": negative}
    return {300: {"x": row}}


def test_the_shipped_rules_that_fire_early_are_the_rising_ones_on_mention_counts() -> None:
    early = shipped_detector().early_rules(EVERY)
    # Not negative_spike (a share can fall), the drops, the silence, nor engagement (down).
    assert [rule.name for rule in early] == ["negative_mentions_high", "mention_volume_surge"]
    # On a 5-minute grid, only windows longer than a step (the 15-minute surge) fire early.
    assert [rule.name for rule in shipped_detector().early_rules(300)] == ["mention_volume_surge"]


def test_an_early_firing_is_the_ticks_firing_sent_once() -> None:
    rule = threshold()
    d, state = detector(rule), BrandState()
    assert d.tick("acme", T0, ["x"], rows(10), state) == []
    tick = T0 + EVERY
    assert d.early("acme", tick, ["x"], rows(79), state, [rule]) == []
    [early] = d.early("acme", tick, ["x"], rows(80), state, [rule])
    assert (early.event, early.rule, early.platform, early.at) == ("fired", rule.name, "x", tick)
    assert (early.value, early.level, early.since) == (80, 80, tick)
    assert d.early("acme", tick, ["x"], rows(120), state, [rule]) == []  # once per tick
    assert state.rules["negative_high|x"].status == "ok"  # the tick moves the state machine
    # Sent already: the tick's firing confirms it with the complete window's figures.
    [confirmed] = d.tick("acme", tick, ["x"], rows(130), state)
    assert (confirmed.event, confirmed.confirms, confirmed.at, confirmed.value) == (
        "fired",
        True,
        tick,
        130,
    )
    assert not early.confirms
    assert state.rules["negative_high|x"].status == "firing"
    assert state.rules["negative_high|x"].early is None
    [cleared] = d.tick("acme", tick + EVERY, ["x"], rows(39), state)
    assert (cleared.event, cleared.at, cleared.fired_at) == ("cleared", tick + EVERY, tick)


def test_a_hold_must_be_over_by_the_tick() -> None:
    rule = threshold(**{"for": "20s"})
    d, state = detector(rule), BrandState()
    d.tick("acme", T0, ["x"], rows(90), state)  # pending since T0
    assert d.early("acme", T0 + 10, ["x"], rows(90), state, [rule]) == []  # held 10 s at T0+10
    d.tick("acme", T0 + 10, ["x"], rows(90), state)
    [early] = d.early("acme", T0 + 20, ["x"], rows(90), state, [rule])
    assert (early.at, early.since) == (T0 + 20, T0)


def test_a_firing_the_complete_window_does_not_confirm_is_cleared_at_the_tick() -> None:
    rule = threshold()
    d, state = detector(rule), BrandState()
    d.tick("acme", T0, ["x"], rows(10), state)
    assert len(d.early("acme", T0 + 10, ["x"], rows(85), state, [rule])) == 1
    # The tick reads less (a bucket expired, a state was handed over): its incident must end.
    [cleared] = d.tick("acme", T0 + 10, ["x"], rows(30), state)
    assert (cleared.event, cleared.at, cleared.since, cleared.fired_at, cleared.value) == (
        "cleared",
        T0 + 10,
        T0 + 10,
        T0 + 10,
        30,
    )
    assert state.rules["negative_high|x"].status == "ok"


def test_cooldown_and_brands_are_obeyed() -> None:
    rule = threshold(cooldown="1m", brands=["acme"])
    d, state = detector(rule), BrandState()
    assert d.early("other", T0, ["x"], rows(500), BrandState(), [rule]) == []
    d.tick("acme", T0, ["x"], rows(90), state)  # fires
    d.tick("acme", T0 + 10, ["x"], rows(10), state)  # clears: quiet until T0 + 70
    assert d.early("acme", T0 + 20, ["x"], rows(500), state, [rule]) == []
    assert len(d.early("acme", T0 + 70, ["x"], rows(500), state, [rule])) == 1


def firings(events: list[AlertEvent]) -> list[tuple[str, float, float, float | None]]:
    """What was sent (a confirmation is not sent again)."""
    return [(e.event, e.at, e.since, e.fired_at) for e in events if not e.confirms]


@settings(max_examples=300, deadline=None)
@given(
    buckets=st.lists(st.integers(0, 12), min_size=5, max_size=80),
    seen=st.lists(st.floats(0, 1), min_size=80, max_size=80),
    level=st.integers(5, 60),
    hold=st.sampled_from([0, 10, 30]),
    cooldown=st.sampled_from([0, 20, 60]),
)
def test_early_firing_changes_when_a_firing_is_sent_never_what_fires(
    buckets: list[int], seen: list[float], level: int, hold: int, cooldown: int
) -> None:
    """On any stream of 10 s counts, with any part of each tick's last bucket counted at the
    early look, the firings and clearings are those of the ticks alone, each sent once."""
    timing = {"for": hold or None, "cooldown": cooldown or None}
    rule = threshold(value=level, clear_value=level // 2, **timing)
    window = rule.window // EVERY
    plain, early = detector(rule), detector(rule)
    plain_state, early_state = BrandState(), BrandState()
    expected: list[AlertEvent] = []
    got: list[AlertEvent] = []
    for k in range(1, len(buckets) + 1):
        tick = T0 + k * EVERY
        rest = sum(buckets[max(0, k - window) : k - 1])
        partial = rest + int(buckets[k - 1] * seen[k - 1])
        if k > 1:
            got += early.early("acme", tick, ["x"], rows(partial), early_state, [rule])
        complete = rows(rest + buckets[k - 1])
        expected += plain.tick("acme", tick, ["x"], complete, plain_state)
        got += early.tick("acme", tick, ["x"], complete, early_state)
    assert firings(got) == firings(expected)
    # Every early firing is confirmed by its tick, with the tick's figures.
    confirmed = {e.at: e for e in got if e.confirms}
    ticks = {e.at: e for e in expected if e.event == "fired"}
    assert set(confirmed) <= set(ticks)
    assert all(e.value == ticks[at].value for at, e in confirmed.items())
    assert early_state.rules.get("negative_high|x") == plain_state.rules.get("negative_high|x")


def test_the_new_fields_are_written_only_when_set() -> None:
    """A state or event without them is what the release before reads (a rollback)."""
    rule = threshold()
    d, state = detector(rule), BrandState()
    d.tick("acme", T0, ["x"], rows(10), state)
    assert "early" not in state.rules["negative_high|x"].to_dict()
    [early] = d.early("acme", T0 + 10, ["x"], rows(90), state, [rule])
    assert "confirms" not in early.to_dict()
    stored = state.rules["negative_high|x"].to_dict()
    assert stored["early"] == T0 + 10
    assert RuleState.from_dict(stored) == state.rules["negative_high|x"]
    [confirmed] = d.tick("acme", T0 + 10, ["x"], rows(90), state)
    assert confirmed.to_dict()["confirms"] is True
    assert AlertEvent.from_dict(confirmed.to_dict()) == confirmed


def test_an_early_firing_whose_tick_was_skipped_is_confirmed_by_the_next_one() -> None:
    rule = threshold()
    d, state = detector(rule), BrandState()
    d.tick("acme", T0, ["x"], rows(10), state)
    d.early("acme", T0 + 10, ["x"], rows(90), state, [rule])
    # Down longer than max_catch_up: the next tick evaluated is a minute later.
    [confirmed] = d.tick("acme", T0 + 70, ["x"], rows(95), state)
    assert (confirmed.event, confirmed.confirms, confirmed.at) == ("fired", True, T0 + 70)
