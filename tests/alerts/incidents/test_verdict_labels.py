"""The team's verdicts as labels for a backtest: reading the export, matching replayed
notifications with it, the summary, and `socialpulse backtest --verdicts` (pure: no services)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from alerts.detection.backtest import BacktestError, parse_time
from alerts.detection.engine import SERIES
from alerts.incidents.lifecycle import Incident
from alerts.incidents.verdict_labels import (
    LabelReport,
    VerdictLabel,
    label_notifications,
    label_summary,
    latest_verdict,
    read_verdicts,
)
from socialpulse.app.cli import build_parser
from socialpulse.app.commands.detection import cmd_backtest
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.paths import project_home

FILE = Path("verdicts.jsonl")
EXPORTED = {
    "incident": "acme-3",
    "brand": "acme",
    "platform": "x",
    "rule": "negative_spike",
    "rules": ["negative_spike", "mention_volume_surge"],
    "severity": "critical",
    "opened_at": "2026-12-01T10:00:00Z",
    "since": "2026-12-01T09:55:00Z",
    "resolved_at": "2026-12-01T11:00:00Z",
    "verdict": "useful",
    "reason": None,
    "by": "U0SOCIAL1",
    "at": "2026-12-01T10:05:00Z",
}
NEEDS = "incident, brand, platform, rule, opened_at, verdict"
AS_EXPORTED = (
    "each line is one incident's verdict as a JSON object, as `socialpulse incidents verdicts` "
    "writes them"
)


def read(text: str) -> list[VerdictLabel]:
    return read_verdicts(FILE, io.StringIO(text))


def line(**changes: Any) -> str:
    data = {**EXPORTED, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


# ---- reading ------------------------------------------------------------------------------


def test_an_exported_line_reads_and_writes_back_the_same() -> None:
    (label,) = read(json.dumps({**EXPORTED, "channel": "#later-key"}) + "\n")  # extra: ignored
    assert label == VerdictLabel(
        incident="acme-3",
        brand="acme",
        platform="x",
        rule="negative_spike",
        rules=("negative_spike", "mention_volume_surge"),
        severity="critical",
        opened_at=parse_time("2026-12-01T10:00:00Z", ""),
        since=parse_time("2026-12-01T09:55:00Z", ""),
        resolved_at=parse_time("2026-12-01T11:00:00Z", ""),
        verdict="useful",
        reason=None,
        by="U0SOCIAL1",
        at=parse_time("2026-12-01T10:05:00Z", ""),
    )
    assert label.to_dict() == EXPORTED
    assert list(label.to_dict()) == list(EXPORTED)  # the export's key order


def test_offsets_read_as_the_same_moment_and_optional_keys_take_what_the_incident_implies() -> None:
    (label,) = read(
        json.dumps(
            {
                "incident": "acme-4",
                "brand": "acme",
                "platform": "x",
                "rule": "surge",
                "opened_at": "2026-12-01T11:00:00+01:00",
                "verdict": "not_useful",
                "reason": "bot_wave",
            }
        )
    )
    assert label.to_dict() == {
        "incident": "acme-4",
        "brand": "acme",
        "platform": "x",
        "rule": "surge",
        "rules": ["surge"],
        "severity": None,
        "opened_at": "2026-12-01T10:00:00Z",
        "since": "2026-12-01T10:00:00Z",
        "resolved_at": None,
        "verdict": "not_useful",
        "reason": "bot_wave",
        "by": None,
        "at": None,
    }


def test_blank_lines_are_skipped_and_the_last_line_of_an_incident_wins() -> None:
    labels = read(
        "\n".join(
            [
                line(incident="acme-1", verdict="useful"),
                "",
                line(incident="acme-2", verdict="useful"),
                "   ",
                line(incident="acme-1", verdict="not_useful", reason="too_sensitive"),
            ]
        )
    )
    assert [(v.incident, v.verdict, v.reason) for v in labels] == [
        ("acme-2", "useful", None),
        ("acme-1", "not_useful", "too_sensitive"),
    ]


def test_an_empty_file_has_no_labels() -> None:
    assert read("") == []
    assert read("\n\n") == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", f"not JSON (Expecting value at column 1); {AS_EXPORTED}"),
        (
            '{"incident": "acme-3"',
            f"not JSON (Expecting ',' delimiter at column 22); {AS_EXPORTED}",
        ),
        ("[1, 2]", f"[1, 2] is not a JSON object; {AS_EXPORTED}"),
        ('"acme-3"', f'"acme-3" is not a JSON object; {AS_EXPORTED}'),
        (line(incident=...), f"missing key 'incident' (every line needs {NEEDS})"),
        (line(brand=...), f"missing key 'brand' (every line needs {NEEDS})"),
        (line(platform=...), f"missing key 'platform' (every line needs {NEEDS})"),
        (line(rule=...), f"missing key 'rule' (every line needs {NEEDS})"),
        (line(opened_at=...), f"missing key 'opened_at' (every line needs {NEEDS})"),
        (line(verdict=...), f"missing key 'verdict' (every line needs {NEEDS})"),
        (line(incident=3), "incident must be a string, not 3"),
        (line(brand=None), "brand must be a string, not null"),
        (line(platform=["x"]), 'platform must be a string, not ["x"]'),
        (line(rule=""), "rule must not be empty"),
        (line(incident=" "), "incident must not be empty"),
        (line(verdict="meh"), "verdict 'meh' is not useful or not_useful"),
        (line(verdict="Useful"), "verdict 'Useful' is not useful or not_useful"),
        (line(verdict=True), "verdict must be a string, not true"),
        (
            line(reason="boring"),
            "reason 'boring' is not one of expected_event, bot_wave, data_problem, "
            "too_sensitive (or null)",
        ),
        (line(reason=1), "reason must be a string, not 1"),
        (line(severity=2), "severity must be a string, not 2"),
        (line(by=False), "by must be a string, not false"),
        (line(rules="negative_spike"), 'rules must be a list of rule names, not "negative_spike"'),
        (line(rules=["a", 1]), 'rules must be a list of rule names, not ["a", 1]'),
        (
            line(opened_at="soon"),
            "opened_at: 'soon' is not a time (use ISO 8601 such as 2026-11-02T09:00:00Z, or "
            "unix seconds)",
        ),
        (
            line(opened_at=1764583200),
            "opened_at must be an ISO 8601 time such as 2026-12-01T10:00:00Z, not 1764583200",
        ),
        (
            line(since="2026-13-01T00:00:00Z"),
            "since: '2026-13-01T00:00:00Z' is not a time (use ISO 8601 such as "
            "2026-11-02T09:00:00Z, or unix seconds)",
        ),
        (
            line(resolved_at={}),
            "resolved_at must be an ISO 8601 time such as 2026-12-01T10:00:00Z, not {}",
        ),
        (
            line(at="nan"),
            "at: 'nan' is not a time (use ISO 8601 such as 2026-12-01T10:00:00Z)",
        ),
    ],
)
def test_a_bad_line_names_the_file_line_key_and_fix(bad: str, message: str) -> None:
    # A good line and a blank one first: the bad line is line 3.
    with pytest.raises(BacktestError) as refused:
        read(f"{line(incident='acme-1')}\n\n{bad}\n{line(incident='acme-2')}\n")
    assert str(refused.value) == f"verdicts.jsonl:3: {message}"


# ---- matching -----------------------------------------------------------------------------


def notification(
    opened_at: float,
    resolved_at: float | None = None,
    brand: str = "acme",
    platform: str = "x",
    id: str = "n",
) -> Incident:
    incident = Incident(
        id=id,
        brand=brand,
        platform=platform,
        rule="surge",
        kind="deviation",
        severity="warning",
        kpi="mentions",
        window=900,
        channel="#social-crisis",
        opened_at=opened_at,
        since=opened_at,
        value=None,
        baseline=None,
        score=None,
    )
    incident.resolved_at = resolved_at
    return incident


def verdict(
    incident: str,
    opened_at: float,
    since: float | None = None,
    resolved_at: float | None = None,
    verdict: str = "useful",
    rule: str = "surge",
    brand: str = "acme",
    platform: str = "x",
    at: float | None = None,
) -> VerdictLabel:
    return VerdictLabel(
        incident=incident,
        brand=brand,
        platform=platform,
        rule=rule,
        rules=(rule,),
        severity="warning",
        opened_at=opened_at,
        since=opened_at if since is None else since,
        resolved_at=resolved_at,
        verdict=verdict,  # type: ignore[arg-type]
        reason=None,
        by=None,
        at=at,
    )


def hit(n: Incident, v: VerdictLabel, tolerance: float = 300) -> bool:
    report = label_notifications([n], [v], tolerance, 0, 10_000)
    return report.matched == ((v,),)


def test_the_tolerance_edges_are_included() -> None:
    # The verdict spans 700-2300: from its since (1000) to its resolution (2000), 300 either side.
    labelled = verdict("acme-1", opened_at=1100, since=1000, resolved_at=2000)
    assert hit(notification(2300), labelled)
    assert not hit(notification(2301), labelled)
    assert hit(notification(500, resolved_at=700), labelled)
    assert not hit(notification(500, resolved_at=699), labelled)
    assert hit(notification(100, resolved_at=5000), labelled)  # spanning it whole
    # Unresolved, a notification counts at its opening only; an open incident until its own.
    assert not hit(notification(699), labelled)
    assert hit(notification(1400), verdict("acme-2", opened_at=1100, since=1000))
    assert not hit(notification(1401), verdict("acme-2", opened_at=1100, since=1000))


def test_brand_and_platform_must_match_except_for_a_series() -> None:
    labelled = verdict("acme-1", opened_at=1000)
    assert hit(notification(1000), labelled)
    assert not hit(notification(1000, brand="globex"), labelled)
    assert not hit(notification(1000, platform="tiktok"), labelled)
    # A CSV series knows no brand or platform: time alone.
    assert hit(notification(1000, brand=SERIES, platform=SERIES), labelled)
    assert not hit(notification(1301, brand=SERIES, platform=SERIES), labelled)
    assert not hit(notification(1000, brand=SERIES, platform="x"), labelled)


def test_counts_per_verdict_and_per_notification() -> None:
    verdicts = [
        verdict("acme-1", 1000, verdict="useful", rule="surge"),
        verdict("acme-2", 1100, verdict="not_useful", rule="surge", at=50),
        verdict("acme-3", 5000, verdict="useful", rule="negative_spike"),  # nothing near: lost
        verdict("acme-4", 8000, verdict="not_useful", rule="negative_spike"),  # avoided
        verdict("acme-5", 9000, verdict="useful", rule="surge"),  # hit by two
        verdict("acme-0", 50, verdict="useful"),  # before the span: not lost
        verdict("acme-9", 20_000, verdict="not_useful"),  # after it
        verdict("globex-1", 1000, verdict="useful", brand="globex"),  # another brand: lost
    ]
    notifications = [
        notification(1050, id="acme-r1"),  # hits acme-1 and acme-2
        notification(3000, id="acme-r2"),  # hits nothing
        notification(9000, id="acme-r3"),
        notification(9200, resolved_at=9300, id="acme-r4"),
        notification(350, id="acme-r5"),  # only acme-0, outside the span: still labelled
    ]
    report = label_notifications(notifications, verdicts, 300, 100, 10_000)
    assert [(v.label.incident, v.hit_by) for v in report.verdicts] == [
        ("acme-1", ("acme-r1",)),
        ("acme-2", ("acme-r1",)),
        ("acme-3", ()),
        ("acme-4", ()),
        ("acme-5", ("acme-r3", "acme-r4")),
        ("globex-1", ()),
    ]
    assert [v.incident for v in report.outside] == ["acme-0", "acme-9"]
    assert [[v.incident for v in found] for found in report.matched] == [
        ["acme-1", "acme-2"],
        [],
        ["acme-5"],
        ["acme-5"],
        ["acme-0"],
    ]
    assert (
        report.useful_kept,
        report.useful_lost,
        report.noise_kept,
        report.noise_avoided,
        report.unlabelled,
    ) == (2, 2, 1, 1, 1)
    assert {r: vars(c) for r, c in report.by_rule.items()} == {
        "negative_spike": {"useful_kept": 0, "useful_lost": 1, "noise_kept": 0, "noise_avoided": 1},
        "surge": {"useful_kept": 2, "useful_lost": 1, "noise_kept": 1, "noise_avoided": 0},
    }
    assert label_summary(report) == "\n".join(
        [
            "verdicts: 6 in the replayed span (2 outside it)",
            "  useful: 2 of 4 still notify (2 lost: acme-3, globex-1)",
            "  not useful: 1 of 2 still notify (1 avoided)",
            "  notifications without a verdict: 1 of 5",
            "  by rule (the rule that opened the incident):",
            "    negative_spike: useful 0 of 1 kept, not useful 0 of 1 kept",
            "    surge: useful 2 of 3 kept, not useful 1 of 1 kept",
        ]
    )
    # The notification that hit two verdicts: the one recorded last (no time: the earliest).
    assert latest_verdict(report.matched[0]) == verdicts[1]
    assert latest_verdict(()) is None


def test_the_summary_without_verdicts_outside_the_span_or_losses() -> None:
    empty = label_notifications([notification(1000)], [], 300, 0, 10_000)
    assert label_summary(empty) == "\n".join(
        [
            "verdicts: none in the file, so nothing to judge the rules by",
            "  notifications without a verdict: 1 of 1",
        ]
    )
    kept = label_notifications(
        [notification(1000)], [verdict("acme-1", 1000, verdict="useful")], 300, 0, 10_000
    )
    assert label_summary(kept) == "\n".join(
        [
            "verdicts: 1 in the replayed span",
            "  useful: 1 of 1 still notify",
            "  not useful: 0 of 0 still notify",
            "  notifications without a verdict: 0 of 1",
            "  by rule (the rule that opened the incident):",
            "    surge: useful 1 of 1 kept",
        ]
    )
    all_outside = label_notifications([], [verdict("acme-1", 50_000)], 300, 0, 10_000)
    assert label_summary(all_outside) == "\n".join(
        [
            "verdicts: 0 in the replayed span (1 outside it)",
            "  useful: 0 of 0 still notify",
            "  not useful: 0 of 0 still notify",
            "  notifications without a verdict: 0 of 0",
        ]
    )


def test_the_summary_names_ten_lost_incidents_and_counts_the_rest() -> None:
    lost = [verdict(f"acme-{i}", 1000 + i) for i in range(1, 13)]
    report: LabelReport = label_notifications([], lost, 300, 0, 10_000)
    assert label_summary(report).splitlines()[1] == (
        "  useful: 0 of 12 still notify (12 lost: acme-1, acme-2, acme-3, acme-4, acme-5, "
        "acme-6, acme-7, acme-8, acme-9, acme-10 and 2 more)"
    )


# ---- socialpulse backtest --verdicts -------------------------------------------------------

START = parse_time("2026-12-01T10:00:00Z", "")
RULES = """\
rules:
  - name: mentions_high
    kind: threshold
    kpi: mentions
    window: 5m
    value: 100
    clear_value: 50
    severity: warning
"""


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(project_home() / "config")


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """Four hours of 5-minute mention counts, above 100 at 10:30-10:35 and at 12:30."""
    rows = [(START + i * 300, 200 if i in (6, 7, 30) else 10) for i in range(48)]
    path = tmp_path / "series.csv"
    path.write_text("timestamp,value\n" + "".join(f"{t:.0f},{v}\n" for t, v in rows))
    (tmp_path / "rules.yaml").write_text(RULES)
    return path


def backtest(
    settings: Settings, series: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    args: argparse.Namespace = build_parser().parse_args(
        [
            "backtest",
            str(series),
            "--kpi",
            "mentions",
            "--rules",
            str(series.parent / "rules.yaml"),
            *extra,
        ]
    )
    code = cmd_backtest(args, settings)
    out, err = capsys.readouterr()
    return code, out, err


def test_backtest_judges_the_rules_by_the_verdicts(
    settings: Settings, series: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = backtest(settings, series, capsys, "--format", "json")
    assert code == 0
    first, second = [json.loads(n) for n in out.splitlines()]
    assert (first["fired_at"], first["resolved_at"]) == (
        "2026-12-01T10:30:00Z",
        "2026-12-01T10:50:00Z",
    )
    assert (second["fired_at"], second["resolved_at"]) == (
        "2026-12-01T12:30:00Z",
        "2026-12-01T12:45:00Z",
    )
    assert "verdict" not in first  # only with --verdicts
    # The team's verdicts on the live incidents these notifications stand for, one useful far
    # from any (the rules lost it), and one from before the series.
    exported = [
        line(
            incident="acme-1",
            rule="mention_volume_surge",
            opened_at=first["fired_at"],
            since="2026-12-01T10:25:00Z",
            resolved_at=first["resolved_at"],
            verdict="useful",
            at="2026-12-01T10:40:00Z",
        ),
        line(
            incident="acme-2",
            rule="negative_spike",
            opened_at="2026-12-01T12:31:00Z",
            since="2026-12-01T12:30:00Z",
            resolved_at=None,
            verdict="not_useful",
            reason="bot_wave",
            at="2026-12-01T12:40:00Z",
        ),
        line(
            incident="acme-3",
            rule="mention_volume_surge",
            opened_at="2026-12-01T11:30:00Z",
            since="2026-12-01T11:30:00Z",
            resolved_at=None,
            verdict="useful",
            at="2026-12-01T12:50:00Z",
        ),
        line(incident="acme-0", opened_at="2026-11-30T10:00:00Z", verdict="useful"),
    ]
    verdicts = series.parent / "verdicts.jsonl"
    verdicts.write_text("\n".join(exported) + "\n")

    code, out, err = backtest(settings, series, capsys, "--verdicts", str(verdicts))
    assert (code, err) == (0, "")
    assert out.endswith(
        "\n".join(
            [
                "2 notifications in 0.0 weeks",
                "  series/series: warning 85.79 a week (budget 1)",
                "verdicts: 3 in the replayed span (1 outside it)",
                "  useful: 1 of 2 still notify (1 lost: acme-3)",
                "  not useful: 1 of 1 still notify",
                "  notifications without a verdict: 0 of 2",
                "  by rule (the rule that opened the incident):",
                "    mention_volume_surge: useful 1 of 2 kept",
                "    negative_spike: not useful 1 of 1 kept",
                "",
            ]
        )
    )

    # JSON: the verdict on each notification (stdout), the summary with the totals (stderr).
    code, out, err = backtest(
        settings, series, capsys, "--verdicts", str(verdicts), "--format", "json"
    )
    assert code == 0
    assert [json.loads(n)["verdict"] for n in out.splitlines()] == ["useful", "not_useful"]
    assert err.splitlines()[-7:-3] == [
        "verdicts: 3 in the replayed span (1 outside it)",
        "  useful: 1 of 2 still notify (1 lost: acme-3)",
        "  not useful: 1 of 1 still notify",
        "  notifications without a verdict: 0 of 2",
    ]

    # Within 1h, acme-3 (11:30) is both notifications': the second's latest verdict is it.
    code, out, err = backtest(
        settings,
        series,
        capsys,
        "--verdicts",
        str(verdicts),
        "--verdict-tolerance",
        "1h",
        "--format",
        "json",
    )
    assert code == 0
    assert [json.loads(n)["verdict"] for n in out.splitlines()] == ["useful", "useful"]
    assert "  useful: 2 of 2 still notify" in err.splitlines()


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (
            line(incident="acme-1") + "\n" + line(verdict="meh") + "\n",
            (),
            "{file}:2: verdict 'meh' is not useful or not_useful",
        ),
        ("{}\n", (), f"{{file}}:1: missing key 'incident' (every line needs {NEEDS})"),
        (
            "",
            ("--verdict-tolerance", "soon"),
            "--verdict-tolerance: 'soon' is not a duration (use 30s, 5m, 1h)",
        ),
        (None, (), "[Errno 2] No such file or directory: '{file}'"),
    ],
)
def test_backtest_refuses_bad_verdicts_before_replaying(
    settings: Settings,
    series: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    extra: tuple[str, ...],
    message: str,
) -> None:
    verdicts = series.parent / "verdicts.jsonl"
    if content is not None:
        verdicts.write_text(content)
    code, out, err = backtest(settings, series, capsys, "--verdicts", str(verdicts), *extra)
    assert (code, out) == (2, "")
    assert err == f"socialpulse backtest: {message.format(file=verdicts)}\n"


def test_backtest_tolerance_needs_verdicts(
    settings: Settings, series: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = backtest(settings, series, capsys, "--verdict-tolerance", "1h")
    assert (code, out) == (2, "")
    assert err == "socialpulse backtest: --verdict-tolerance needs --verdicts FILE\n"
