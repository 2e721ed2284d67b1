"""How alerts read: one line on what a rule saw, in its own terms (pure)."""

from __future__ import annotations

from typing import Protocol

from socialpulse.core.config_types import format_duration

KIND_TITLE = {
    "threshold": "over its threshold",
    "percent_change": "changed against its baseline",
    "deviation": "far from its baseline",
    "negative_spike": "negative mention spike",
    "rate_of_change": "changing fast",
    "absence": "no data",
}


class Seen(Protocol):
    """What a firing or an incident says about the rule's reading."""

    @property
    def kind(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def kpi(self) -> str: ...
    @property
    def window(self) -> int: ...
    @property
    def value(self) -> float | None: ...
    @property
    def baseline(self) -> float | None: ...
    @property
    def score(self) -> float | None: ...


def number(value: float | None) -> str:
    """A KPI value for people: whole numbers plain, others to 3 significant digits."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.3g}"


def describe(seen: Seen) -> str:
    """One line on what the rule saw: value, baseline and score in the rule's terms."""
    window = format_duration(seen.window)
    line = f"{seen.kpi} {number(seen.value)} in the last {window}"
    if seen.kind == "threshold":
        return f"{line} (threshold rule {seen.rule})"
    if seen.kind == "absence":
        return f"no {seen.kpi} in the last {window}; usually {number(seen.baseline)}"
    score = ""
    if seen.score is not None:
        unit = "%" if seen.kind in ("percent_change", "rate_of_change") else " spreads"
        score = f", {seen.score:+.1f}{unit}"
    return f"{line}, baseline {number(seen.baseline)}{score}"
