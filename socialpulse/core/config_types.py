"""Value types shared by every config file's models: durations and strict models."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "WEEKDAYS",
    "Duration",
    "Strict",
    "TimeZone",
    "Weekday",
    "format_duration",
    "parse_duration",
    "parse_instant",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """Turn '30s', '5m', '1h', '1d' (or a whole number of seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use 30s, 5m, 1h)")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use 30s, 5m, 1h)")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return seconds


def parse_instant(text: str) -> float:
    """Unix seconds of an ISO 8601 time (``Z`` or an offset; without one, UTC); ValueError
    when it is not one."""
    moment = datetime.fromisoformat(text.strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def format_duration(seconds: int) -> str:
    """Render seconds the way the config writes them: 300 -> '5m', 3600 -> '1h', 45 -> '45s'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[int, BeforeValidator(parse_duration)]


def check_zone(value: str) -> str:
    """``value`` when it is an IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return value


def check_weekday(value: str) -> str:
    """``value`` when it is a day as the config writes them (mon ... sun)."""
    if value not in WEEKDAYS:
        raise ValueError(f"{value!r} is not a day; use {', '.join(WEEKDAYS)}")
    return value


TimeZone = Annotated[str, AfterValidator(check_zone)]
Weekday = Annotated[str, AfterValidator(check_weekday)]


class Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)
