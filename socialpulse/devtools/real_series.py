"""The shipped rules on real mention-volume series with labelled anomalies (NAB's realTweets,
in ../shared/detection/ beside the project), scored with the scorer that comes with them.

Used by ``benchmarks/detection.py`` and by the test that holds the score's floor. The series are
not copied into the project (AGPL-3.0 data); without the folder there is nothing to score.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from alerts.detection.backtest import backtest_series, infer_interval, iso, read_series
from alerts.detection.engine import Detector
from alerts.incidents.replay import replay
from socialpulse.app.settings import Settings
from socialpulse.core.paths import project_home


def detection_data() -> Path:
    """Where the real series are: $SOCIALPULSE_DETECTION_DATA, else ../shared/detection."""
    return Path(
        os.environ.get("SOCIALPULSE_DETECTION_DATA")
        or project_home().parent / "shared" / "detection"
    )


@dataclass(frozen=True)
class SeriesResult:
    """One series' figures."""

    name: str
    raw: float
    hits: int
    windows: int
    firings: int  # every rule firing
    notifications: int  # incidents opened (one surge, one page)
    outside: int  # notifications outside every labelled window (after probation)
    weeks: float
    delays_h: list[float]  # first notification in each hit window, hours after it opens


@dataclass(frozen=True)
class Score:
    """All series' figures and NAB's normalised score (0: fires nothing, 100: perfect)."""

    series: list[SeriesResult]
    score: float

    @property
    def outside_per_week(self) -> float:
        """Notifications outside labelled windows per series-week."""
        return sum(s.outside for s in self.series) / sum(s.weeks for s in self.series)


def _scorer(folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("nab_score", folder / "score.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{folder / 'score.py'}: the scorer is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_real_series(detector: Detector, settings: Settings, folder: Path) -> Score:
    """Run the rules watching mentions over every series in ``folder/realtweets-dev`` as
    ``socialpulse backtest --kpi mentions`` does, and score their notifications."""
    scorer = _scorer(folder)
    data = folder / "realtweets-dev"
    windows = json.loads((data / "windows.json").read_text())
    mentions = Detector(
        [r for r in detector.rules if r.kpi == "mentions" and r.kind != "negative_spike"],
        detector.settings,
        detector.units,
        detector.budget,
        shared_with=detector.rules,
    )
    results, total, null, perfect = [], 0.0, 0.0, 0.0
    for name in sorted(windows):
        path = data / name
        with path.open(encoding="utf-8", newline="") as handle:
            rows = read_series(path, handle)
        with path.open(encoding="utf-8", newline="") as handle:
            stamps = [row["timestamp"][:19] for row in csv.DictReader(handle)]
        interval = infer_interval(path, [r[0] for r in rows])
        events = backtest_series(mentions, "mentions", rows, interval, progress=False)
        incidents = replay(events, settings.alerts.incidents, settings.alerts.slack.channel)
        fired = {iso(i.opened_at).replace("T", " ").replace("Z", "")[:19] for i in incidents}
        spans = [(a[:19], b[:19]) for a, b in windows[name]]
        raw, hits, n, outside, weeks = scorer.series_score(stamps, fired, spans)
        delays = []
        for a, b in spans:
            inside = sorted(t for t in fired if a <= t <= b)
            if inside:
                delays.append((_ts(inside[0]) - _ts(a)) / 3600)
        firings = sum(1 for e in events if e.event == "fired")
        results.append(
            SeriesResult(name, raw, hits, n, firings, len(incidents), outside, weeks, delays)
        )
        total, null, perfect = total + raw, null - n, perfect + n
    return Score(results, 100.0 * (total - null) / (perfect - null))


def _ts(text: str) -> float:
    from alerts.detection.backtest import parse_time

    return parse_time(text, "windows.json")
