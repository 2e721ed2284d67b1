"""Warm from day one: an export of last days' raw events teaches every baseline and every
calibrated rule's surge history (socialpulse.app.history; pure, no Kafka, no Redis)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from alerts.detection.configured import detector_for
from alerts.detection.engine import baseline_key
from socialpulse.app.history import learn_from_export
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home
from tests.alerts.detection.shapes import rhythm
from tests.e2e.helpers.events import mention

DAY = 86400


def export(path: Path, days: int) -> int:
    """``days`` of acme's mentions on x ending now, about 6 a minute with the daily rhythm, and
    three lines ingest would refuse."""
    rng = random.Random(3)
    now = time.time()
    lines, n = [], 0
    for minute in range(days * 1440, 0, -1):
        ago = minute * 60
        for _ in range(rng.randrange(0, round(12 * rhythm(now - ago)) + 1)):
            lines.append(json.dumps(mention("acme", "x", "a coffee", "neutral", ago=ago)))
            n += 1
    lines += ['{"not": "an event"}', "not json", json.dumps(mention("acme", "x", "hi", ago=-3600))]
    path.write_text("\n".join(lines) + "\n")
    return n


def test_an_export_of_five_days_warms_baselines_and_calibrations(tmp_path: Path) -> None:
    settings = load_settings(project_home() / "config")
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    counted = export(tmp_path / "mentions.jsonl", days=5)
    learned = learn_from_export(tmp_path / "mentions.jsonl", settings, detector)
    assert learned.counted == counted
    # Not an event, not JSON, and an hour in the future.
    assert sum(learned.rejected.values()) == 3 and learned.rejected["ts_in_future"] == 1
    state = learned.states["acme"]
    surge = next(r for r in detector.rules if r.name == "mention_volume_surge")
    baseline = detector.baseline(state, "mentions", surge.window, "x")
    assert baseline.ready
    # One sample per 5 minutes for 5 days, up to the last event (after it there is no data).
    assert 5 * 288 - 5 <= baseline.updates <= 5 * 288 + 3
    assert baseline_key("mentions", surge.window, "x") in state.baseline_states()
    # Four days watched after the baseline's first day: past budget.learn (3 days), so the
    # surge rule has a level of its own, not the start level.
    rule_state = state.rules["mention_volume_surge|x"]
    assert rule_state.calibration is not None
    assert rule_state.calibration.observed >= 3.9 * DAY
    share = detector.share(surge, "acme", "x", ["x", "instagram"])
    level = detector.calibrated(surge, rule_state, share)
    assert level is not None and level[0] != settings.alerts.budget.start_z
    assert level[0] >= settings.alerts.budget.min_z
