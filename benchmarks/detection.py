"""Detection benchmark: precision, recall and delay of the mention-volume rules, by method.

Generates mention-count series like real brand mentions (daily and weekly cycles, trend,
over-dispersed noise; socialpulse.devtools.series_generator) at three volumes, injects known
anomalies (viral spikes, a level shift, a drop, a silent feed), and replays them through the
same detector the worker runs (alerts.detection.backtest.backtest_series), for each baseline
method and z.

    .venv/bin/python benchmarks/detection.py [--seeds 5] [--weeks 5]

Prints one row per (method, z): recall of up and down anomalies, precision (firings that
overlap a real anomaly), false alarms per week, and the median detection delay.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.detection.backtest import backtest_series, pair_firings
from alerts.detection.engine import Detector
from alerts.detection.rules import BaselineSettings, Rule
from socialpulse.devtools.series_generator import Anomaly, minute_counts, rolling_sums

WINDOW, STEP = 900, 300  # 15-minute mention counts, sampled every 5 minutes
START = 1_767_225_600  # 2026-01-01T00:00Z, a Thursday
UP, DOWN = ("spike", "shift"), ("drop", "silence")


def anomalies(rng: random.Random, weeks: int) -> list[Anomaly]:
    """Two clean weeks to learn from, then seven anomalies spread over the rest."""
    span = (weeks - 2) * 7 * 86400
    kinds = [
        ("spike", rng.uniform(1, 3) * 3600, rng.uniform(3, 8)),
        ("spike", rng.uniform(1, 3) * 3600, rng.uniform(3, 8)),
        ("spike", rng.uniform(1, 3) * 3600, rng.uniform(3, 8)),
        ("spike", rng.uniform(1, 3) * 3600, rng.uniform(3, 8)),
        ("shift", 2 * 86400, 2.0),
        ("drop", 6 * 3600, 0.3),
        ("silence", 3 * 3600, 0.0),
    ]
    slots = sorted(rng.sample(range(len(kinds) * 2), len(kinds)))
    slot = span / (len(kinds) * 2)
    result = []
    for (kind, duration, magnitude), s in zip(kinds, slots, strict=True):
        start = START + 14 * 86400 + s * slot + rng.uniform(0, slot / 4)
        start -= start % 60
        result.append(Anomaly(kind, start, int(min(duration, slot * 0.9)), magnitude))  # type: ignore[arg-type]
    return result


def rules(z: float) -> list[Rule]:
    """The shipped mention-volume rules, with the z under test."""
    return [
        Rule.model_validate(r)
        for r in (
            {
                "name": "surge",
                "kind": "deviation",
                "kpi": "mentions",
                "z": z,
                "clear_z": 2,
                "min_volume": 20,
                "for": "2m",
                "cooldown": "30m",
            },
            {
                "name": "drop",
                "kind": "deviation",
                "kpi": "mentions",
                "direction": "down",
                "z": z,
                "clear_z": 2,
                "min_volume": 50,
                "for": "15m",
                "cooldown": "1h",
            },
            {
                "name": "silent",
                "kind": "absence",
                "kpi": "mentions",
                "min_volume": 10,
                "for": "15m",
                "cooldown": "1h",
            },
        )
    ]


def evaluate(method: str, z: float, seeds: int, weeks: int) -> dict[str, float]:
    found = {"up": 0, "down": 0}
    total = {"up": 0, "down": 0}
    delays: list[float] = []
    good = bad = 0
    for base in (0.5, 3.0, 20.0):
        for seed in range(seeds):
            rng = random.Random(seed * 1000 + int(base * 10))
            injected = anomalies(rng, weeks)
            counts = minute_counts(
                START, weeks * 7 * 1440, base, injected, seed=seed, trend_per_week=0.05
            )
            rows = [(t, float(v), None) for t, v in rolling_sums(counts, WINDOW, STEP)]
            settings = BaselineSettings(method=method)  # type: ignore[arg-type]
            detector = Detector(rules(z), settings, {})
            firings = pair_firings(backtest_series(detector, "mentions", rows, progress=False))
            for a in injected:
                side = "up" if a.kind in UP else "down"
                # Anomalies a rule cannot see at this volume (a drop at 0.5/min) still count.
                total[side] += 1
                hits = [
                    f
                    for f in firings
                    if a.start <= f.fired_at <= a.end + WINDOW
                    and (f.rule == "surge") == (side == "up")
                ]
                if hits:
                    found[side] += 1
                    delays.append(min(f.fired_at for f in hits) - a.start)
            for f in firings:
                if any(a.start <= f.fired_at <= a.end + WINDOW for a in injected):
                    good += 1
                else:
                    bad += 1
    series_weeks = 3 * seeds * (weeks - 2)
    return {
        "recall_up": found["up"] / total["up"],
        "recall_down": found["down"] / total["down"],
        "precision": good / (good + bad) if good + bad else 1.0,
        "false_per_week": bad / series_weeks,
        "median_delay_min": statistics.median(delays) / 60 if delays else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=5)
    parser.add_argument("--z", type=float, nargs="*", default=[3, 4, 5, 6])
    args = parser.parse_args()
    print(
        f"{'method':<9} {'z':>3} {'recall up':>9} {'recall down':>11} {'precision':>9} "
        f"{'false/week':>10} {'delay (min)':>11}"
    )
    for method in ("seasonal", "rolling"):
        for z in args.z:
            r = evaluate(method, z, args.seeds, args.weeks)
            print(
                f"{method:<9} {z:>3g} {r['recall_up']:>9.0%} {r['recall_down']:>11.0%} "
                f"{r['precision']:>9.0%} {r['false_per_week']:>10.2f} "
                f"{r['median_delay_min']:>11.0f}"
            )


if __name__ == "__main__":
    main()
