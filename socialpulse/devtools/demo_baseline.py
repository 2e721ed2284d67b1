"""The demo's shipped warm start: baselines and surge calibrations learned from days of the
demo stream, so ``make demo`` pages through the adaptive rules (negative spike, surge) from its
first minute, not only through the fixed threshold.

``socialpulse demo-baseline`` builds ``demo_baseline.json`` beside this module: the simulator's
mentions at the demo's rate over ``days`` past days (its daily and weekly rhythm, its tones and
languages), counted and replayed through the shipped rules by the same code as
``socialpulse baseline backfill --events`` (socialpulse.app.history). ``socialpulse demo`` hands
it over to the worker when its stream runs at the rate it was built for (another rate would
make every minute a surge or a drop).
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.detection.backtest import iso
from alerts.detection.calibration import Calibration
from alerts.detection.configured import detector_for
from alerts.detection.engine import BrandState
from alerts.detection.rule_check import RuleState
from socialpulse.app.history import learn_from_export
from socialpulse.app.settings import Settings
from socialpulse.devtools.scenarios import activity
from socialpulse.devtools.series_generator import poisson
from socialpulse.devtools.simulate import Simulator

DEMO_BASELINE = Path(__file__).with_name("demo_baseline.json")
MENTION_SHARE = 0.3  # of the demo stream's events (socialpulse.devtools.simulate.events)
STEP = 10.0


def history(settings: Settings, days: float, rate: float, seed: int, end: float) -> Iterator[str]:
    """JSON lines of the demo stream's mentions over ``days`` before ``end``."""
    sim = Simulator(settings.brands.brands, random.Random(seed))
    t = end - days * 86400
    while t < end:
        moment = datetime.fromtimestamp(t, UTC)
        for _ in range(poisson(sim.rng, STEP * rate * MENTION_SHARE * activity(moment))):
            at = datetime.fromtimestamp(t + sim.rng.uniform(0, STEP), UTC)
            yield json.dumps(sim.mention(sim.rng.choice(sim.brands), now=at)) + "\n"
        t += STEP


def build(
    settings: Settings, days: float = 4.5, rate: float = 20.0, seed: int = 1
) -> dict[str, Any]:
    """Learn the demo brands' baselines and calibrations from ``days`` of the demo stream."""
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    end = math.floor(time.time() / 300) * 300
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-history.jsonl"
        with path.open("w", encoding="utf-8") as out:
            out.writelines(history(settings, days, rate, seed, end))
        learned = learn_from_export(path, settings, detector)
    return {
        "built": iso(end),
        "rate": rate,
        "days": days,
        "seed": seed,
        "events": learned.counted,
        "brands": {
            brand: {
                "baselines": state.baseline_states(),
                "calibrations": {
                    key: rule.calibration.to_dict()
                    for key, rule in sorted(state.rules.items())
                    if rule.calibration is not None
                },
            }
            for brand, state in sorted(learned.states.items())
        },
    }


def load(path: Path = DEMO_BASELINE) -> tuple[float, dict[str, BrandState]]:
    """The rate a shipped warm start was built for, and its states per brand."""
    data = json.loads(path.read_text(encoding="utf-8"))
    states = {}
    for brand, learned in data["brands"].items():
        state = BrandState(baselines=dict(learned["baselines"]))
        for key, calibration in learned["calibrations"].items():
            state.rules[key] = RuleState(calibration=Calibration.from_dict(calibration))
        states[brand] = state
    return float(data["rate"]), states
