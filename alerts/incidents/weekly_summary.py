"""A brand's weekly summary (pure): the figures of a week's incidents, and their Slack text.

For each brand, once a week: how many incidents opened, notified and were silenced, how long
they took to be acknowledged and resolved, the team's verdicts (the useful share), the noisiest
rules, the silences used, the notifications sent against the notification budget, and the
rules whose useful share over 30 days is below the configured floor. :func:`week_summary`
works the figures out of the brand's incidents and silences; :func:`summary_text` writes the
Slack mrkdwn. Reading the data and posting are the caller's.

Times are measured from when an incident notified (``notified_at``: its opening, or when the
silence that held it ended), and as they stood at the week's end: an acknowledgement or a
resolution after it does not count yet.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.detection.backtest import iso
from alerts.detection.budget import BudgetSettings
from alerts.incidents.lifecycle import VERDICT_REASONS, Incident, is_slack_user
from alerts.silences.model import Silence
from alerts.slack_text import escape, join_lines
from socialpulse.core.config_types import format_duration

SEVERITY_ORDER = ("critical", "warning", "info")
NOISIEST = 3  # rules listed as the noisiest
MAX_LISTED = 10  # silences, and rules below the floor, listed before "and N more"
MAX_CHARS = 3000  # a Slack section block's text limit
# Characters (escaped) of what people and events wrote, in one line of the summary.
_NAME_CHARS = 64
_WHO_CHARS = 40
_COMMENT_CHARS = 120
_MATCHERS_CHARS = 80
_When = Callable[[Incident], "float | None"]  # an incident's time of an action, if any


@dataclass(frozen=True)
class Timing:
    """Times from notification to an action: how many incidents had it by the week's end, the
    median and the longest (seconds; None when none had it), and how many had not."""

    count: int
    median: float | None
    longest: float | None
    missing: int


@dataclass(frozen=True)
class RuleNoise:
    """A rule among the week's notified incidents: the incidents it fired in, and their
    firings (of every rule in them: firings are counted by incident, not by rule)."""

    rule: str
    incidents: int
    firings: int


@dataclass(frozen=True)
class RuleShare:
    """A rule's verdicts over 30 days (the incidents it opened): useful of all given."""

    rule: str
    useful: int
    verdicts: int

    @property
    def share(self) -> float:
        """The useful share, 0 to 1."""
        return self.useful / self.verdicts if self.verdicts else 0.0


@dataclass(frozen=True)
class SilenceUse:
    """A silence active in the week, and how many of the week's incidents it held at
    opening. ``ends_at`` is when it stopped silencing (early expiry included)."""

    id: str
    matchers: str
    created_by: str
    comment: str
    starts_at: float
    ends_at: float
    incidents: int


@dataclass(frozen=True)
class BudgetUse:
    """Notifications of a severity in the week against the brand's budget for a week (the
    sum over its platforms)."""

    severity: str
    spent: int
    budget: float

    @property
    def over(self) -> bool:
        """More notifications than the budget."""
        return self.spent > self.budget


@dataclass(frozen=True)
class WeekSummary:
    """A brand's week of incidents, ``start`` (included) to ``end`` (excluded) by opening."""

    brand: str
    brand_name: str
    start: float
    end: float
    opened: int  # incidents opened in the week
    notified: int  # of them, those whose message was posted
    notified_by_severity: tuple[tuple[str, int], ...]  # critical, warning, info
    silenced: int  # held by a silence at opening (some notified later, when it ended)
    silenced_never_notified: int
    acknowledge: Timing  # missing: notified, not acknowledged (auto-resolved ones included)
    resolve: Timing  # missing: notified, still open at the week's end
    useful: int
    not_useful: int
    not_useful_reasons: tuple[tuple[str, int], ...]  # VERDICT_REASONS keys; "" for none
    without_verdict: int
    noisiest: tuple[RuleNoise, ...]
    floor: float
    min_verdicts: int
    below_floor: tuple[RuleShare, ...]  # over 30 days
    silences: tuple[SilenceUse, ...]
    budget: tuple[BudgetUse, ...]  # critical, warning, info

    @property
    def useful_share(self) -> float | None:
        """Useful of the week's verdicts, 0 to 1; None when no verdict was given."""
        given = self.useful + self.not_useful
        return self.useful / given if given else None


def week_summary(
    brand: str,
    brand_name: str,
    platforms: Sequence[str],
    start: float,
    end: float,
    incidents: Sequence[Incident],
    silences: Sequence[Silence],
    budget: BudgetSettings,
    floor: float,
    min_verdicts: int,
) -> WeekSummary:
    """The figures of the brand's week ``[start, end)``.

    ``incidents``: the brand's incidents opened in the 30 days up to ``end`` (those opened in
    the week make the week's figures; all of them, the rules below the useful ``floor``, a
    share 0 to 1, among those with at least ``min_verdicts`` verdicts). ``silences``: those
    that matched the brand and were active in the week. ``platforms``: the brand's, whose
    weekly budgets add up to its budget.
    """
    week = [i for i in incidents if start <= i.opened_at < end]
    notified = [i for i in week if i.notified_at is not None]
    severities = Counter(i.severity for i in notified)
    silenced = [i for i in week if i.silenced_by is not None]
    held = Counter(i.silenced_by for i in silenced)
    verdicts = [i for i in week if i.verdict is not None]
    reasons = Counter(i.verdict_reason or "" for i in verdicts if i.verdict == "not_useful")
    return WeekSummary(
        brand=brand,
        brand_name=brand_name,
        start=start,
        end=end,
        opened=len(week),
        notified=len(notified),
        notified_by_severity=tuple((s, severities[s]) for s in SEVERITY_ORDER),
        silenced=len(silenced),
        silenced_never_notified=sum(1 for i in silenced if i.notified_at is None),
        acknowledge=_timing(notified, end, lambda i: i.acked_at),
        resolve=_timing(notified, end, lambda i: i.resolved_at),
        useful=sum(1 for i in verdicts if i.verdict == "useful"),
        not_useful=sum(reasons.values()),
        not_useful_reasons=tuple(
            sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0] == "", kv[0]))
        ),
        without_verdict=len(week) - len(verdicts),
        noisiest=_noisiest(notified),
        floor=floor,
        min_verdicts=min_verdicts,
        below_floor=_below_floor(incidents, floor, min_verdicts),
        silences=tuple(
            SilenceUse(
                id=s.id,
                matchers=s.matchers_text(),
                created_by=s.created_by,
                comment=s.comment,
                starts_at=s.starts_at,
                ends_at=s.end,
                incidents=held[s.id],
            )
            for s in sorted(silences, key=lambda s: (s.starts_at, s.id))
        ),
        budget=tuple(
            BudgetUse(
                severity=s,
                spent=severities[s],
                budget=sum(budget.severity_budget(brand, p, s) for p in platforms),
            )
            for s in SEVERITY_ORDER
        ),
    )


def summary_text(summary: WeekSummary) -> str:
    """The summary as Slack mrkdwn, under ``MAX_CHARS`` characters: a header line, then a
    line or a list for each part. Everything people and events wrote is escaped; the lists
    are capped (``MAX_LISTED`` items, fewer when the text would be too long, then
    "and N more")."""
    s = summary
    header = (
        f"*Weekly summary for {_cut(s.brand_name, _NAME_CHARS)} ({_cut(s.brand, _NAME_CHARS)})*, "
        f"{_date(s.start, '{date_short}')} to {_date(s.end, '{date_short}')}"
    )
    head = [header, *_incident_lines(s)]
    silences = [_silence_line(u) for u in s.silences]
    rules = [
        f"• {_cut(r.rule, _NAME_CHARS)}: {_percent(r.share)} useful ({r.useful} of {r.verdicts})"
        for r in s.below_floor
    ]
    budget = ", ".join(
        f"{b.severity} {b.spent} of {_number(b.budget)}" + (" (over)" if b.over else "")
        for b in s.budget
    )
    floor = (
        f"{_percent(s.floor)} useful floor (30 days, at least {_plural(s.min_verdicts, 'verdict')})"
    )
    shown_silences, shown_rules = min(len(silences), MAX_LISTED), min(len(rules), MAX_LISTED)

    def render() -> list[str]:
        lines = list(head)
        if silences:
            lines += ["*Silences used:*", *_capped(silences, shown_silences)]
        else:
            lines.append("No silences used.")
        lines.append(f"*Notification budget:* {budget}.")
        if rules:
            lines += [f"*Rules below the {floor}:*", *_capped(rules, shown_rules)]
        else:
            lines.append(f"No rule below the {floor}.")
        return lines

    lines = render()
    # Long names and comments: fewer silences listed, then fewer rules, until it fits.
    while _size(lines) > MAX_CHARS and (shown_silences or shown_rules):
        if shown_silences:
            shown_silences -= 1
        else:
            shown_rules -= 1
        lines = render()
    return join_lines(lines, MAX_CHARS)


def _timing(notified: Sequence[Incident], end: float, when: _When) -> Timing:
    """From notification to ``when`` (acknowledged, resolved) for the notified incidents
    that had it by ``end``."""
    took = sorted(
        max(float(t - (i.notified_at or i.opened_at)), 0.0)
        for i in notified
        if (t := when(i)) is not None and t <= end
    )
    if not took:
        return Timing(0, None, None, len(notified))
    return Timing(len(took), float(statistics.median(took)), took[-1], len(notified) - len(took))


def _noisiest(notified: Sequence[Incident]) -> tuple[RuleNoise, ...]:
    """The rules in the most notified incidents (then by name), with those incidents'
    firings."""
    counts: Counter[str] = Counter()
    firings: Counter[str] = Counter()
    for incident in notified:
        for rule in dict.fromkeys(incident.rules or [incident.rule]):
            counts[rule] += 1
            firings[rule] += incident.firings
    top = sorted(counts, key=lambda r: (-counts[r], r))[:NOISIEST]
    return tuple(RuleNoise(r, counts[r], firings[r]) for r in top)


def _below_floor(
    incidents: Sequence[Incident], floor: float, min_verdicts: int
) -> tuple[RuleShare, ...]:
    """The rules (that opened the incidents) with at least ``min_verdicts`` verdicts and a
    useful share below ``floor``, lowest share first (then by name)."""
    useful: Counter[str] = Counter()
    given: Counter[str] = Counter()
    for incident in incidents:
        if incident.verdict is not None:
            given[incident.rule] += 1
            useful[incident.rule] += int(incident.verdict == "useful")
    shares = [
        RuleShare(rule, useful[rule], n)
        for rule, n in given.items()
        if n >= min_verdicts and useful[rule] / n < floor
    ]
    return tuple(sorted(shares, key=lambda r: (r.share, r.rule)))


def _incident_lines(s: WeekSummary) -> list[str]:
    """The week's incidents, response times, verdicts and noisiest rules."""
    if not s.opened:
        return ["No incidents."]
    by_severity = ", ".join(f"{n} {sev}" for sev, n in s.notified_by_severity if n)
    line = f"*Incidents:* {s.opened} opened, {s.notified} notified"
    line += f" ({by_severity})" if by_severity else ""
    later = s.silenced - s.silenced_never_notified
    held = [
        *([f"{s.silenced_never_notified} never notified"] if s.silenced_never_notified else []),
        *([f"{later} notified when the silence ended"] if later else []),
    ]
    line += f"; {s.silenced} silenced ({', '.join(held)})." if s.silenced else "; none silenced."
    lines = [line]
    if s.notified:
        lines.append(
            "*Time to acknowledge:* "
            + _timing_text(s.acknowledge, "acknowledged", "not acknowledged")
        )
        lines.append("*Time to resolve:* " + _timing_text(s.resolve, "resolved", "still open"))
    share = s.useful_share
    if share is None:
        useful = f"*Useful:* no verdict given on {_plural(s.opened, 'incident')}."
    else:
        useful = f"*Useful:* {_percent(share)} ({s.useful} useful, {s.not_useful} not useful"
        if s.not_useful_reasons:
            useful += ": " + ", ".join(
                f"{n} {_reason(reason)}" for reason, n in s.not_useful_reasons
            )
        useful += ")"
        useful += f"; {s.without_verdict} without verdict." if s.without_verdict else "."
    lines.append(useful)
    if s.noisiest:
        lines.append(
            "*Noisiest rules:* "
            + "; ".join(
                f"{_cut(r.rule, _NAME_CHARS)} ({_plural(r.incidents, 'incident')}, "
                f"{_plural(r.firings, 'firing')})"
                for r in s.noisiest
            )
            + "."
        )
    return lines


def _timing_text(timing: Timing, done: str, missing: str) -> str:
    """``median 4m, longest 1h (3 acknowledged); 1 not acknowledged.``"""
    if timing.median is None or timing.longest is None:
        return f"none {done}; {timing.missing} {missing}."
    text = (
        f"median {_duration(timing.median)}, longest {_duration(timing.longest)} "
        f"({timing.count} {done})"
    )
    return text + (f"; {timing.missing} {missing}." if timing.missing else ".")


def _silence_line(use: SilenceUse) -> str:
    """A silence: who made it and why, what it matched, when, and the incidents it held."""
    who = (
        f"<@{use.created_by}>"
        if is_slack_user(use.created_by)
        else _cut(use.created_by, _WHO_CHARS)
    )
    when = "{date_short} {time}"
    return (
        f"• {_cut(use.id, _WHO_CHARS)}: {_cut(use.comment, _COMMENT_CHARS)} "
        f"({_cut(use.matchers, _MATCHERS_CHARS)}), "
        f"by {who}, {_date(use.starts_at, when)} to {_date(use.ends_at, when)}: "
        f"held {_plural(use.incidents, 'incident')}"
    )


def _capped(lines: list[str], shown: int) -> list[str]:
    """The first ``shown`` lines, and how many more there are."""
    more = len(lines) - shown
    return [*lines[:shown], *([f"…and {more} more"] if more else [])]


def _size(lines: list[str]) -> int:
    """Characters of the lines joined by newlines."""
    return sum(len(line) for line in lines) + max(len(lines) - 1, 0)


def _cut(text: str, limit: int) -> str:
    """Untrusted text on one line, escaped, at most ``limit`` characters (cut between
    characters, never inside an entity, with an ellipsis)."""
    flat = " ".join(text.split())
    shown = escape(flat)
    if len(shown) <= limit:
        return shown
    kept: list[str] = []
    size = 0
    for char in flat:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


def _date(ts: float, form: str) -> str:
    """A time Slack shows in each reader's time zone; ISO 8601 UTC where it cannot."""
    return f"<!date^{int(ts)}^{form}|{iso(int(ts))}>"


def _duration(seconds: float) -> str:
    """Whole seconds as the config writes them ("4m", "1h", "95s")."""
    whole = round(seconds)
    return format_duration(whole) if whole else "0s"


def _percent(share: float) -> str:
    """A share 0 to 1 as a whole percent (halves up)."""
    return f"{math.floor(share * 100 + 0.5)}%"


def _number(value: float) -> str:
    """A budget: whole when it is, else one decimal."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _reason(reason: str) -> str:
    """A not-useful reason in words (a key not known, escaped)."""
    if not reason:
        return "no reason given"
    return VERDICT_REASONS.get(reason) or _cut(reason, _NAME_CHARS)


__all__ = [
    "MAX_CHARS",
    "BudgetUse",
    "RuleNoise",
    "RuleShare",
    "SilenceUse",
    "Timing",
    "WeekSummary",
    "summary_text",
    "week_summary",
]
