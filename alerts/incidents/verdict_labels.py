"""The on-call team's verdicts on incidents as labels for a backtest (pure).

``socialpulse incidents verdicts`` exports one JSON object per incident that has a verdict
("useful" or "not_useful", with an optional reason). A backtest replays history through a rules
file into notifications (alerts.incidents.replay); matching those against the verdicts says, in
the team's own terms, what the rules would change: how many of the incidents called useful
would still notify, and how many of those called not useful would be avoided.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

from alerts.detection.backtest import BacktestError, iso, parse_time
from alerts.detection.engine import SERIES
from alerts.incidents.lifecycle import Incident

Verdict = Literal["useful", "not_useful"]
Reason = Literal["expected_event", "bot_wave", "data_problem", "too_sensitive"]
VERDICTS: tuple[Verdict, ...] = ("useful", "not_useful")
REASONS: tuple[Reason, ...] = ("expected_event", "bot_wave", "data_problem", "too_sensitive")
REQUIRED = ("incident", "brand", "platform", "rule", "opened_at", "verdict")
# A live incident and its replayed notification rarely open at the same tick (the replay's data
# and grid differ a little from the worker's), so they match within this many seconds.
DEFAULT_TOLERANCE = 1800
# Lost incidents are named in the summary so the team can look them up; past this many the
# line would wrap across the terminal, so the rest are only counted.
NAMED_AT_MOST = 10
_FROM = (
    "each line is one incident's verdict as a JSON object, as "
    "`socialpulse incidents verdicts` writes them"
)


@dataclass(frozen=True)
class VerdictLabel:
    """One incident's recorded verdict, times in unix seconds (the export's line, parsed)."""

    incident: str
    brand: str
    platform: str
    rule: str  # the rule that opened the incident
    rules: tuple[str, ...]  # every rule that fired in it
    severity: str | None
    opened_at: float  # when it notified
    since: float  # when the opening rule's condition began to hold
    resolved_at: float | None
    verdict: Verdict
    reason: Reason | None
    by: str | None  # who recorded the verdict
    at: float | None  # when it was recorded

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "verdict") -> VerdictLabel:
        """A label from one exported object; ``where`` (``file:line``) starts every error.

        Unknown keys are ignored, so a newer exporter's lines still read. Missing optional keys
        take what the incident implies: ``rules`` its opening rule, ``since`` its opening time.
        """
        for key in REQUIRED:
            if key not in data:
                raise BacktestError(
                    f"{where}: missing key {key!r} (every line needs {', '.join(REQUIRED)})"
                )
        incident, brand, platform, rule = (
            _name(data, key, where) for key in ("incident", "brand", "platform", "rule")
        )
        verdict = _text(data, "verdict", where)
        if verdict not in VERDICTS:
            raise BacktestError(f"{where}: verdict {verdict!r} is not useful or not_useful")
        reason = _optional_text(data, "reason", where)
        if reason is not None and reason not in REASONS:
            raise BacktestError(
                f"{where}: reason {reason!r} is not one of {', '.join(REASONS)} (or null)"
            )
        opened_at = _time(data, "opened_at", where)
        since = _optional_time(data, "since", where)
        return cls(
            incident=incident,
            brand=brand,
            platform=platform,
            rule=rule,
            rules=_rules(data, where) if data.get("rules") is not None else (rule,),
            severity=_optional_text(data, "severity", where),
            opened_at=opened_at,
            since=opened_at if since is None else since,
            resolved_at=_optional_time(data, "resolved_at", where),
            verdict=cast(Verdict, verdict),
            reason=cast(Reason | None, reason),
            by=_optional_text(data, "by", where),
            at=_optional_time(data, "at", where),
        )

    def to_dict(self) -> dict[str, Any]:
        """The export's object: the same keys in the same order, times in ISO 8601."""
        return {
            "incident": self.incident,
            "brand": self.brand,
            "platform": self.platform,
            "rule": self.rule,
            "rules": list(self.rules),
            "severity": self.severity,
            "opened_at": iso(self.opened_at),
            "since": iso(self.since),
            "resolved_at": iso(self.resolved_at) if self.resolved_at is not None else None,
            "verdict": self.verdict,
            "reason": self.reason,
            "by": self.by,
            "at": iso(self.at) if self.at is not None else None,
        }


def _shown(value: Any) -> str:
    # As the file has it (true, 3, [..]), not as Python prints it.
    return json.dumps(value)


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise BacktestError(f"{where}: {key} must be a string, not {_shown(value)}")
    return value


def _name(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(data, key, where)
    if not value.strip():
        # An empty brand or incident id would match or name nothing.
        raise BacktestError(f"{where}: {key} must not be empty")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if data.get(key) is None else _text(data, key, where)


def _time(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data[key]
    if not isinstance(value, str):
        raise BacktestError(
            f"{where}: {key} must be an ISO 8601 time such as 2026-12-01T10:00:00Z, "
            f"not {_shown(value)}"
        )
    ts = parse_time(value, f"{where}: {key}")
    if not math.isfinite(ts):  # parse_time reads "nan" as a number: no time to match on
        raise BacktestError(
            f"{where}: {key}: {value!r} is not a time (use ISO 8601 such as 2026-12-01T10:00:00Z)"
        )
    return ts


def _optional_time(data: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if data.get(key) is None else _time(data, key, where)


def _rules(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = data["rules"]
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise BacktestError(f"{where}: rules must be a list of rule names, not {_shown(value)}")
    return tuple(value)


def read_verdicts(path: Path, handle: TextIO) -> list[VerdictLabel]:
    """The verdicts of a JSONL export, one per incident, in the order of the lines that count.

    Blank lines are skipped. An incident given twice takes its last line (the team changed its
    mind). Any bad line raises :class:`BacktestError` naming ``path``, the line number, the key
    and the fix; an empty file gives no labels.
    """
    by_incident: dict[str, VerdictLabel] = {}
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            # Without its line end, so an unfinished object's column is on this line.
            data = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise BacktestError(
                f"{where}: not JSON ({exc.msg} at column {exc.colno}); {_FROM}"
            ) from None
        if not isinstance(data, dict):
            raise BacktestError(f"{where}: {_shown(data)[:40]} is not a JSON object; {_FROM}")
        label = VerdictLabel.from_dict(data, where)
        # Popped first so the later line also takes the later place.
        by_incident.pop(label.incident, None)
        by_incident[label.incident] = label
    return list(by_incident.values())


@dataclass(frozen=True)
class LabelledVerdict:
    """A verdict in the replayed span and the replayed notifications that hit it (their ids)."""

    label: VerdictLabel
    hit_by: tuple[str, ...]

    @property
    def notified(self) -> bool:
        """Whether the rules replayed would still have notified this incident."""
        return bool(self.hit_by)


@dataclass(frozen=True)
class RuleCounts:
    """Verdicts kept (still notified) and not, by what the team called them."""

    useful_kept: int = 0
    useful_lost: int = 0
    noise_kept: int = 0  # not useful, still notified
    noise_avoided: int = 0

    @classmethod
    def of(cls, verdicts: Sequence[LabelledVerdict]) -> RuleCounts:
        """The counts of some labelled verdicts."""

        def count(verdict: Verdict, notified: bool) -> int:
            return sum(1 for v in verdicts if (v.label.verdict, v.notified) == (verdict, notified))

        return cls(
            useful_kept=count("useful", True),
            useful_lost=count("useful", False),
            noise_kept=count("not_useful", True),
            noise_avoided=count("not_useful", False),
        )


@dataclass(frozen=True)
class LabelReport:
    """What a replay's notifications make of the team's verdicts.

    ``verdicts``: those of incidents opened within the replayed span, each with the
    notifications that hit it; ``outside``: the others, which the replay could not have judged
    (not lost, not kept); ``matched``: per notification, in order, every verdict it hit (those
    outside the span too: the notification is still about a labelled incident).
    """

    verdicts: tuple[LabelledVerdict, ...]
    outside: tuple[VerdictLabel, ...]
    matched: tuple[tuple[VerdictLabel, ...], ...]
    useful_kept: int
    useful_lost: int
    noise_kept: int
    noise_avoided: int
    unlabelled: int  # notifications that hit no verdict
    by_rule: dict[str, RuleCounts]  # by the verdict's rule (the one that opened the incident)


def verdict_span(label: VerdictLabel, tolerance: float) -> tuple[float, float]:
    """The times a replayed notification may overlap to be this incident: from when its
    condition began to when it resolved (or, still open, when it notified), widened by
    ``tolerance`` either side; both ends included."""
    last = label.resolved_at if label.resolved_at is not None else label.opened_at
    return label.since - tolerance, last + tolerance


def hits(notification: Incident, label: VerdictLabel, tolerance: float) -> bool:
    """Whether a replayed notification is the labelled incident: the same brand and platform,
    and overlapping times (:func:`verdict_span`; the notification from when it notified to
    when it resolved, or just when it notified if it did not).

    A backtest of a CSV series knows no brand or platform (both are
    alerts.detection.engine.SERIES): its notifications match on time alone, so give it the
    verdicts of the brand and platform the series is of.
    """
    series = notification.brand == SERIES and notification.platform == SERIES
    if not series and (notification.brand, notification.platform) != (label.brand, label.platform):
        return False
    first = notification.opened_at
    last = notification.resolved_at if notification.resolved_at is not None else first
    low, high = verdict_span(label, tolerance)
    return first <= high and low <= last


def label_notifications(
    notifications: Sequence[Incident],
    verdicts: Sequence[VerdictLabel],
    tolerance: float,
    start: float,
    end: float,
) -> LabelReport:
    """Match a replay's notifications with the team's verdicts and count the outcome.

    A verdict counts (kept or lost) when its incident opened within the replayed span
    [``start``, ``end``]: outside it the replay had no data to notify it from. Every pair that
    :func:`hits` counts once: a notification may hit several verdicts and a verdict several
    notifications.
    """
    # By position, not by value: two lines alike are still two verdicts.
    found = [[j for j, v in enumerate(verdicts) if hits(n, v, tolerance)] for n in notifications]
    inside = [j for j, v in enumerate(verdicts) if start <= v.opened_at <= end]
    labelled = tuple(
        LabelledVerdict(
            verdicts[j],
            tuple(n.id for n, hit in zip(notifications, found, strict=True) if j in hit),
        )
        for j in inside
    )
    totals = RuleCounts.of(labelled)
    rules = sorted({v.label.rule for v in labelled})
    return LabelReport(
        verdicts=labelled,
        outside=tuple(v for v in verdicts if not start <= v.opened_at <= end),
        matched=tuple(tuple(verdicts[j] for j in hit) for hit in found),
        useful_kept=totals.useful_kept,
        useful_lost=totals.useful_lost,
        noise_kept=totals.noise_kept,
        noise_avoided=totals.noise_avoided,
        unlabelled=sum(1 for hit in found if not hit),
        by_rule={r: RuleCounts.of([v for v in labelled if v.label.rule == r]) for r in rules},
    )


def latest_verdict(labels: Sequence[VerdictLabel]) -> VerdictLabel | None:
    """Of the verdicts one notification hit, the one recorded last (one without a time counts
    as the earliest); None when it hit none."""
    if not labels:
        return None
    return max(labels, key=lambda v: -math.inf if v.at is None else v.at)


def _named(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:NAMED_AT_MOST])
    more = len(ids) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


def label_summary(report: LabelReport) -> str:
    """The outcome for the terminal, for example::

        verdicts: 4 in the replayed span (1 outside it)
          useful: 1 of 2 still notify (1 lost: acme-7)
          not useful: 1 of 2 still notify (1 avoided)
          notifications without a verdict: 3 of 5
          by rule (the rule that opened the incident):
            mention_volume_surge: useful 1 of 2 kept, not useful 1 of 1 kept
            negative_spike: not useful 0 of 1 kept

    "(N outside it)" only when some are; with no verdict at all, one line says so before the
    notifications line. A rule's "useful" or "not useful" part shows only when it has some.
    """
    notifications = len(report.matched)
    unlabelled = f"  notifications without a verdict: {report.unlabelled} of {notifications}"
    if not report.verdicts and not report.outside:
        return "\n".join(
            ["verdicts: none in the file, so nothing to judge the rules by", unlabelled]
        )
    outside = f" ({len(report.outside)} outside it)" if report.outside else ""
    useful = report.useful_kept + report.useful_lost
    noise = report.noise_kept + report.noise_avoided
    lost = [
        v.label.incident for v in report.verdicts if v.label.verdict == "useful" and not v.notified
    ]
    lines = [
        f"verdicts: {len(report.verdicts)} in the replayed span{outside}",
        f"  useful: {report.useful_kept} of {useful} still notify"
        + (f" ({len(lost)} lost: {_named(lost)})" if lost else ""),
        f"  not useful: {report.noise_kept} of {noise} still notify"
        + (f" ({report.noise_avoided} avoided)" if report.noise_avoided else ""),
        unlabelled,
    ]
    if report.by_rule:
        lines.append("  by rule (the rule that opened the incident):")
    for rule, counts in report.by_rule.items():
        parts = []
        if counts.useful_kept + counts.useful_lost:
            total = counts.useful_kept + counts.useful_lost
            parts.append(f"useful {counts.useful_kept} of {total} kept")
        if counts.noise_kept + counts.noise_avoided:
            total = counts.noise_kept + counts.noise_avoided
            parts.append(f"not useful {counts.noise_kept} of {total} kept")
        lines.append(f"    {rule}: {', '.join(parts)}")
    return "\n".join(lines)
