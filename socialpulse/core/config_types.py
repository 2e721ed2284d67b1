"""Value types shared by every config file's models: durations and strict models."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["Duration", "Strict", "format_duration", "parse_duration"]

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


def format_duration(seconds: int) -> str:
    """Render seconds the way the config writes them: 300 -> '5m', 3600 -> '1h', 45 -> '45s'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[int, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)
