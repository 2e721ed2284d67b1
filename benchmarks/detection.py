"""Detection benchmark: the shipped rules on real mention series, then precision, recall and
delay of the mention-volume rules on generated series, by method.

Real series first: NAB's realTweets with labelled anomaly windows, from ../shared/detection/
when present (socialpulse.devtools.real_series), scored with the scorer that comes with them:
score, windows hit, firings, notifications, notifications outside windows per series-week, and
how long after a window opens the first notification comes.

Then it generates mention-count series like real brand mentions (daily and weekly cycles, trend,
over-dispersed noise; socialpulse.devtools.series_generator) at three volumes, injects known
anomalies (viral spikes, a level shift, a drop, a silent feed), and replays them through the
same detector the worker runs (alerts.detection.backtest.backtest_series), for each baseline
method and z.

    .venv/bin/python benchmarks/detection.py [--seeds 5] [--weeks 5]
        [--events FILE --verdicts FILE [--rules FILE]]

With --events (raw events, JSONL) and --verdicts (the team's verdicts on the incidents of that
time, `socialpulse incidents verdicts`), it also replays the events through the rules (default:
config/alerts.yaml) as `socialpulse backtest` does and says which incidents the team called
useful would still notify, and which called not useful would be avoided.

Prints one row per (method, level), the level a budget (calibrated, notifications a week) or
a fixed z: recall of up and down anomalies, precision (firings that
overlap a real anomaly), false alarms per week, and the median detection delay.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.detection.backtest import (
    BacktestError,
    backtest_events,
    backtest_series,
    count_event_file,
    event_span,
    pair_firings,
)
from alerts.detection.budget import BudgetSettings
from alerts.detection.configured import detector_for
from alerts.detection.engine import Detector
from alerts.detection.rules import BaselineSettings, Rule
from alerts.incidents.replay import replay
from alerts.incidents.verdict_labels import (
    DEFAULT_TOLERANCE,
    label_notifications,
    label_summary,
    read_verdicts,
)
from socialpulse.app.settings import load_rules_file, load_settings
from socialpulse.core.config import ConfigError
from socialpulse.core.paths import project_home
from socialpulse.devtools.real_series import detection_data, score_real_series
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


def rules(z: float | None) -> list[Rule]:
    """The shipped mention-volume rules, with the z under test (None: calibrated)."""
    fixed = {"z": z, "clear_z": 2} if z is not None else {}
    return [
        Rule.model_validate(r)
        for r in (
            {
                "name": "surge",
                "kind": "deviation",
                "kpi": "mentions",
                **fixed,
                "min_volume": 20,
                "for": "2m",
                "cooldown": "3h",
            },
            {
                "name": "drop",
                "kind": "deviation",
                "kpi": "mentions",
                "direction": "down",
                **fixed,
                **({"budget": 0.25} if z is None else {}),
                "severity": "info",
                "min_volume": 50,
                "for": "15m",
                "cooldown": "3h",
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


def evaluate(
    method: str, z: float | None, budget: float, seeds: int, weeks: int
) -> dict[str, float]:
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
            rows = [(t, float(v), None) for t, v in rolling_sums(counts, STEP, STEP)]
            settings = BaselineSettings(method=method)  # type: ignore[arg-type]
            per_week = {"critical": budget, "warning": budget, "info": budget}
            detector = Detector(rules(z), settings, {}, BudgetSettings(per_week=per_week))
            events = backtest_series(detector, "mentions", rows, STEP, progress=False)
            firings = pair_firings(events)
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


def real_series() -> None:
    """The shipped configuration on the real series, as score.py scores it."""
    folder = detection_data()
    if not (folder / "realtweets-dev" / "windows.json").exists():
        print(f"real series: none at {folder} (set SOCIALPULSE_DETECTION_DATA)\n")
        return
    settings = load_settings(project_home() / "config")
    result = score_real_series(detector_for(settings.alerts, settings.kpis.kpis), settings, folder)
    print("Real mention series (NAB realTweets, shipped config/alerts.yaml):")
    print(
        f"{'series':<26} {'raw':>7} {'hit':>5} {'firings':>7} {'pages':>5} "
        f"{'outside/wk':>10} {'first page (h after window opens)':>34}"
    )
    for r in result.series:
        delays = ", ".join(f"{d:.1f}" for d in r.delays_h) or "-"
        print(
            f"{r.name:<26} {r.raw:>7.2f} {r.hits:>2}/{r.windows:<2} {r.firings:>7} "
            f"{r.notifications:>5} {r.outside / r.weeks:>10.2f}  {delays}"
        )
    print(
        f"score {result.score:.1f} (0 = fires nothing, 100 = perfect); notifications outside "
        f"windows {result.outside_per_week:.2f} per series-week\n"
    )


def team_verdicts(events: str | None, verdicts: str | None, rules_file: str | None) -> None:
    """The rules (``rules_file``, default the shipped ones) judged by the team's verdicts on
    the incidents of a raw events export, as `socialpulse backtest --verdicts` judges them."""
    if events is None or verdicts is None:
        print("Team verdicts: needs --events FILE and --verdicts FILE\n")
        return
    settings = load_settings(project_home() / "config")
    alerts = load_rules_file(Path(rules_file), settings) if rules_file else settings.alerts
    detector = detector_for(alerts, settings.kpis.kpis)
    path = Path(verdicts)
    with path.open(encoding="utf-8") as handle:
        labels = read_verdicts(path, handle)
    counts, first, last, _ = count_event_file(settings, Path(events))
    start, end = event_span(detector, first, last)
    fired = backtest_events(settings, detector, counts, start, end, progress=False)
    notifications = replay(fired, settings.alerts.incidents, settings.alerts.slack.channel, end)
    report = label_notifications(notifications, labels, DEFAULT_TOLERANCE, start, end)
    print(f"Team verdicts ({verdicts} on {events}, rules {rules_file or 'config/alerts.yaml'}):")
    print(label_summary(report) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=5)
    parser.add_argument("--z", type=float, nargs="*", default=[4, 5, 6])
    parser.add_argument("--budgets", type=float, nargs="*", default=[0.5, 1, 2])
    parser.add_argument("--events", metavar="FILE", help="raw events (JSONL) to judge rules on")
    parser.add_argument("--verdicts", metavar="FILE", help="the team's verdicts (JSONL)")
    parser.add_argument("--rules", metavar="FILE", help="rules to judge (default: shipped)")
    args = parser.parse_args()
    if (args.events is None) != (args.verdicts is None):
        parser.error(
            "--events and --verdicts go together: the verdicts label the events' incidents"
        )
    if args.rules and args.events is None:
        parser.error("--rules needs --events and --verdicts (the rules judged by the verdicts)")
    real_series()
    try:
        team_verdicts(args.events, args.verdicts, args.rules)
    except (BacktestError, ConfigError, OSError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    print("Generated series (budget: calibrated to notifications a week; z: fixed level):")
    print(
        f"{'method':<9} {'level':>10} {'recall up':>9} {'recall down':>11} {'precision':>9} "
        f"{'false/week':>10} {'delay (min)':>11}"
    )
    levels = [(None, b) for b in args.budgets] + [(z, 1.0) for z in args.z]
    for method in ("seasonal", "rolling"):
        for z, budget in levels:
            r = evaluate(method, z, budget, args.seeds, args.weeks)
            shown = f"budget {budget:g}" if z is None else f"z {z:g}"
            print(
                f"{method:<9} {shown:>10} {r['recall_up']:>9.0%} {r['recall_down']:>11.0%} "
                f"{r['precision']:>9.0%} {r['false_per_week']:>10.2f} "
                f"{r['median_delay_min']:>11.0f}"
            )


if __name__ == "__main__":
    main()
