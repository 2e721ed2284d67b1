"""The demo's shipped warm start covers every baseline and calibrated rule of the shipped
configuration, warm, and is learned from the demo stream by the backfill's own code."""

from __future__ import annotations

from alerts.detection.configured import detector_for
from alerts.detection.engine import baseline_key, rule_platforms
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.paths import project_home
from socialpulse.devtools import demo_baseline

# The warm start is learned from the demo stream's mentions: the rules on them are warm from
# the first minute; the engagement rule (interactions) learns live.
MENTION_KPIS = {"mentions", "mentions_negative", "negative_share"}


def needed(settings: Settings) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(brand, baseline key) and (brand, rule|platform of a calibrated rule) of the config's
    rules on mentions."""
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    baselines, calibrations = set(), set()
    for brand in settings.brands.brands:
        for rule in detector.rules_for(brand.id):
            if not set(detector.learned(rule)) <= MENTION_KPIS:
                continue
            for platform in rule_platforms(rule, brand.platforms):
                for kpi in detector.learned(rule):
                    baselines.add((brand.id, baseline_key(kpi, rule.window, platform)))
                if rule.calibrated:
                    calibrations.add((brand.id, f"{rule.name}|{platform}"))
    return baselines, calibrations


def test_the_shipped_warm_start_is_complete_warm_and_for_the_demo_rate() -> None:
    settings = load_settings(project_home() / "config")
    rate, states = demo_baseline.load()
    assert rate == 20.0  # the demo's default --rate
    baselines, calibrations = needed(settings)
    shipped_baselines = {(b, k) for b, s in states.items() for k in s.baselines}
    shipped_calibrations = {(b, k) for b, s in states.items() for k in s.rules}
    # Stale when the rules change: rebuild with `socialpulse demo-baseline`.
    assert baselines <= shipped_baselines, sorted(baselines - shipped_baselines)[:5]
    assert calibrations <= shipped_calibrations, sorted(calibrations - shipped_calibrations)[:5]
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    for brand, key in baselines:
        kpi, window, platform = key.split("|")
        assert detector.baseline(states[brand], kpi, int(window), platform).ready, (brand, key)
    learn = settings.alerts.budget.learn
    for brand, key in calibrations:
        calibration = states[brand].rules[key].calibration
        assert calibration is not None and calibration.observed >= learn, (brand, key)


def test_a_short_build_learns_every_brand_from_the_stream() -> None:
    settings = load_settings(project_home() / "config")
    data = demo_baseline.build(settings, days=0.25, rate=20.0, seed=2)
    # Six hours of 6 mentions a second on average, less at night.
    assert 20_000 < data["events"] < 6 * 6 * 3600 * 2
    assert sorted(data["brands"]) == sorted(settings.brand_ids)
    acme = data["brands"]["acme"]
    assert "mentions|900|x" in acme["baselines"]
    # One sample per 5-minute step from the first event's (just after the start) to the last
    # event's (just before the end): 6 h of steps but one. Surges are only measured once the
    # baseline is warm (a day).
    assert acme["baselines"]["mentions|900|x"]["updates"] == 6 * 12 - 1
    assert acme["calibrations"] == {}
