"""``alerts.yaml: silences``: when the channel is told a silence ends, the longest silence a
person may make, and the recurring silences declared for regular events (validated models and
pure schedule maths, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from alerts.silences.model import Silence
from socialpulse.core.config_types import WEEKDAYS, Duration, Strict, TimeZone, Weekday

CONFIG_AUTHOR = "alerts.yaml"


class RecurringSilence(Strict):
    """A silence that comes back every week on ``days``, from ``start`` to ``end`` local time in
    ``timezone`` (over midnight when the end is earlier than the start), e.g. a weekly live
    show or the Thursday product drop."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    comment: str = Field(min_length=1, max_length=500)
    brands: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: time
    end: time
    timezone: TimeZone = "UTC"

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one day, e.g. [thu]")
        return value

    @model_validator(mode="after")
    def _some_matcher(self) -> RecurringSilence:
        if not (self.brands or self.platforms or self.rules or self.severities):
            raise ValueError(
                "give at least one of brands, platforms, rules, severities: a silence of "
                "everything would hide every alert"
            )
        if self.start == self.end:
            raise ValueError("start and end are the same time; a silence needs a length")
        return self

    def occurrences(self, now: float) -> list[tuple[float, float]]:
        """Its occurrences that are active at ``now`` or start within the next week, as unix
        (start, end), earliest first."""
        return self.occurrences_between(now, now + 7 * 86400)

    def occurrences_between(self, begin: float, until: float) -> list[tuple[float, float]]:
        """Its occurrences that end after ``begin`` and start at or before ``until``."""
        zone = ZoneInfo(self.timezone)
        first = datetime.fromtimestamp(begin, UTC).astimezone(zone).date() - timedelta(days=1)
        days = int((until - begin) // 86400) + 3  # yesterday's may run over midnight into today
        found = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            if WEEKDAYS[day.weekday()] not in self.days:
                continue
            start = datetime.combine(day, self.start, zone)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            end = datetime.combine(end_day, self.end, zone)
            if end.timestamp() > begin and start.timestamp() <= until:
                found.append((start.timestamp(), end.timestamp()))
        return found

    def silences(self, now: float, until: float | None = None) -> list[Silence]:
        """Its occurrences as silences, id ``config:<name>:<start>``: those active at ``now``
        or starting within a week (as :meth:`occurrences`), or with ``until``, those between."""
        spans = self.occurrences(now) if until is None else self.occurrences_between(now, until)
        return [
            Silence(
                id=f"config:{self.name}:{int(start)}",
                starts_at=start,
                ends_at=end,
                created_by=CONFIG_AUTHOR,
                comment=self.comment,
                created_at=start,
                source="config",
                brands=tuple(self.brands),
                platforms=tuple(self.platforms),
                rules=tuple(self.rules),
                severities=tuple(self.severities),
            )
            for start, end in spans
        ]


class SilenceSettings(Strict):
    """``alerts.yaml: silences``."""

    # The channel is told this long before a silence ends (once), so whoever made it can
    # extend it while the launch still runs.
    notify_before: Duration = 900
    # The longest silence a person may make from Slack or the CLI: a forgotten silence hides
    # alerts for as long as it lasts. Regular events are declared under `recurring`.
    max_duration: Duration = 7 * 86400
    recurring: list[RecurringSilence] = Field(default_factory=list)

    @field_validator("recurring")
    @classmethod
    def _unique_names(cls, value: list[RecurringSilence]) -> list[RecurringSilence]:
        names = [r.name for r in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two recurring silences are named {name!r}; names are ids")
        return value

    def declared(self, now: float, until: float | None = None) -> list[Silence]:
        """The recurring silences' occurrences active now or within the next week (with
        ``until``: those between ``now`` and it)."""
        return [s for r in self.recurring for s in r.silences(now, until)]


__all__ = ["CONFIG_AUTHOR", "RecurringSilence", "SilenceSettings"]
