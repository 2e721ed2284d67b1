"""Silences (pure): a matcher set, a start and an end, who made one and why.

Like Alertmanager's: a silence matches a firing when each of its matchers (brands, platforms,
rules, severities) is empty or holds the firing's value, and it is active from ``starts_at``
until ``ends_at`` or until someone expires it early. A silenced firing is still evaluated and
recorded (alerts.incidents), it only opens no notification.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from socialpulse.core.config_types import format_duration

Source = Literal["slack", "cli", "config"]
# Each matcher and the name people give one value of it (brand=acme).
SINGULAR = {"brands": "brand", "platforms": "platform", "rules": "rule", "severities": "severity"}
MATCHERS = tuple(SINGULAR)
SEVERITIES = ("info", "warning", "critical")
MAX_COMMENT = 500  # characters of a silence's why: a line in Slack, not an essay
MAX_LEAD = 366 * 86400  # a silence starts within a year: further is a typo
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class SilenceError(ValueError):
    """A silence cannot be made or changed as asked; the message names the field and the fix."""


@dataclass(frozen=True)
class Silence:
    """One silence. Empty matchers match anything; at least one is set."""

    id: str
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float
    source: Source
    brands: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    # Where it was made from Slack (told there before it ends); else the brands' channels.
    channel: str | None = None
    expired_at: float | None = None  # expired early
    expired_by: str | None = None

    @property
    def end(self) -> float:
        """When it stops silencing: its end, or when it was expired if that came first."""
        if self.expired_at is not None:
            return min(self.ends_at, self.expired_at)
        return self.ends_at

    def active(self, now: float) -> bool:
        """Whether it silences at ``now``."""
        return self.starts_at <= now < self.end

    def over(self, now: float) -> bool:
        """Whether it has ended (or was expired, even before it began)."""
        return self.expired_at is not None or now >= self.ends_at

    def matches(self, brand: str, platform: str, rule: str, severity: str) -> bool:
        """Whether it silences a firing of ``rule`` (of ``severity``) on the brand and
        platform, whenever it is active."""
        return (
            (not self.brands or brand in self.brands)
            and (not self.platforms or platform in self.platforms)
            and (not self.rules or rule in self.rules)
            and (not self.severities or severity in self.severities)
        )

    def matchers_text(self) -> str:
        """The matchers as ``brand=acme rule=a,b`` (names from config or checked on creation)."""
        parts = [
            f"{SINGULAR[name]}={','.join(values)}"
            for name, values in zip(MATCHERS, self._matchers(), strict=True)
            if values
        ]
        return " ".join(parts)

    def _matchers(self) -> tuple[tuple[str, ...], ...]:
        return (self.brands, self.platforms, self.rules, self.severities)

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Silence:
        """A silence from :meth:`to_json`'s output."""
        data = json.loads(raw)
        for name in MATCHERS:
            data[name] = tuple(data.get(name) or ())
        return cls(**data)

    def expire(self, who: str, now: float) -> Silence:
        """This silence ended early by ``who`` at ``now``."""
        if self.expired_at is not None or now >= self.ends_at:
            raise SilenceError(f"silence {self.id} has already ended")
        return replace(self, expired_at=max(now, self.starts_at), expired_by=who)


@dataclass(frozen=True)
class Known:
    """What a silence's matchers may name: the configured brands (their platforms) and rules."""

    brands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # rule -> its severity


def check_matchers(
    matchers: Mapping[str, Sequence[str]], known: Known
) -> dict[str, tuple[str, ...]]:
    """The matchers, checked against the configuration: each value a configured brand, a
    platform of one, a rule or a severity; at least one matcher set. SilenceError names the
    first that is not."""
    checked: dict[str, tuple[str, ...]] = {}
    platforms = sorted({p for ps in known.brands.values() for p in ps} | {"all"})
    choices = {
        "brands": sorted(known.brands),
        "platforms": platforms,
        "rules": sorted(known.rules),
        "severities": list(SEVERITIES),
    }
    for name in MATCHERS:
        values = tuple(dict.fromkeys(v.strip() for v in matchers.get(name, ()) if v.strip()))
        for value in values:
            if value not in choices[name]:
                shown = value if _NAME.fullmatch(value) else repr(value[:40])
                raise SilenceError(
                    f"{name}: {shown} is not one of the configured {name}: "
                    f"{', '.join(choices[name])}"
                )
        checked[name] = values
    if not any(checked.values()):
        raise SilenceError(
            "a silence needs at least one matcher (brand, platform, rule or severity); "
            "one that matched everything would hide every alert"
        )
    return checked


def new_silence(
    silence_id: str,
    matchers: Mapping[str, Sequence[str]],
    starts_at: float,
    ends_at: float,
    who: str,
    why: str,
    now: float,
    source: Source,
    known: Known,
    max_duration: int,
    channel: str | None = None,
) -> Silence:
    """A silence checked for what people get wrong: unknown names, an end before the start
    or already past, longer than ``max_duration`` seconds, no reason given."""
    checked = check_matchers(matchers, known)
    comment = " ".join(why.split())
    if not comment:
        raise SilenceError("why: say why it is silenced (e.g. 'product launch at 10:00')")
    if len(comment) > MAX_COMMENT:
        raise SilenceError(f"why: {len(comment)} characters; keep it under {MAX_COMMENT}")
    if starts_at > now + MAX_LEAD:
        raise SilenceError("start: more than a year ahead; give a nearer start")
    if ends_at <= starts_at:
        raise SilenceError("end: it must come after the start")
    if ends_at <= now:
        raise SilenceError("end: it is already past; a silence must end in the future")
    if ends_at - starts_at > max_duration:
        raise SilenceError(
            f"end: {format_duration(int(ends_at - starts_at))} is longer than "
            f"silences.max_duration ({format_duration(max_duration)}); declare a recurring "
            "silence in alerts.yaml for a regular event"
        )
    return Silence(
        id=silence_id,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=who,
        comment=comment,
        created_at=now,
        source=source,
        channel=channel,
        brands=checked["brands"],
        platforms=checked["platforms"],
        rules=checked["rules"],
        severities=checked["severities"],
    )


def covering(
    silences: Iterable[Silence], brand: str, platform: str, rule: str, severity: str, now: float
) -> Silence | None:
    """The active silence that matches a firing (the one ending last, when several do), or
    None."""
    found = [s for s in silences if s.active(now) and s.matches(brand, platform, rule, severity)]
    return max(found, key=lambda s: (s.end, s.id)) if found else None


def expiring(silences: Iterable[Silence], now: float, notify_before: int) -> list[Silence]:
    """The active silences that end within ``notify_before`` seconds (the channel is told
    once; the caller keeps which were told)."""
    return [s for s in silences if s.active(now) and s.end - now <= notify_before]


def to_dict(silence: Silence, now: float) -> dict[str, Any]:
    """JSON-ready, with its state at ``now`` (pending, active, expired)."""
    state = "expired" if silence.over(now) else "pending" if now < silence.starts_at else "active"
    return {**asdict(silence), "state": state}


__all__ = [
    "MATCHERS",
    "SINGULAR",
    "Known",
    "Silence",
    "SilenceError",
    "Source",
    "check_matchers",
    "covering",
    "expiring",
    "new_silence",
    "to_dict",
]
