"""SMART targets: progress to the target value and whether the current pace reaches it (pure).

Progress is the share of the way from the start value to the target value covered so far
(0 at the start, 1 when reached; above 1 when overshot, below 0 when moving away). The pace is
the average since the start: a target is on track when its progress is at least the share of
the time used (start to deadline), i.e. when the value projected linearly to the deadline
reaches the target. A target that is reached stays on track; after the deadline only a reached
target is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from alerts.detection.rules import Target

# Time since the start before the pace means anything.
MIN_PACE_SECONDS = 3600


@dataclass(frozen=True)
class TargetStatus:
    """Where a target stands at one moment."""

    current: float
    start_value: float
    progress: float  # of the way from start_value to the target value
    time_used: float  # of the time from start to deadline, 0..1
    projected: float | None  # the value at the deadline at the pace since the start
    reached: bool
    on_track: bool | None  # None: too early to judge the pace


def day_start(day: date) -> float:
    """Unix time of a date's midnight, UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def target_status(
    target: Target, current: float, start_value: float, started_at: float, now: float
) -> TargetStatus:
    """Progress of ``target`` when its KPI is ``current`` at ``now``, having been
    ``start_value`` at ``started_at`` (the start date, or when it was first measured)."""
    deadline = day_start(target.deadline)
    span = deadline - started_at
    time_used = min(max((now - started_at) / span, 0.0), 1.0) if span > 0 else 1.0
    distance = target.value - start_value
    reached = current >= target.value if distance >= 0 else current <= target.value
    progress = 1.0 if distance == 0 else (current - start_value) / distance
    judged = now - started_at >= MIN_PACE_SECONDS
    on_track: bool | None = None
    if reached:
        on_track = True
    elif judged:
        on_track = now < deadline and progress >= time_used
    return TargetStatus(
        current=current,
        start_value=start_value,
        progress=progress,
        time_used=time_used,
        projected=start_value + (current - start_value) / time_used if judged else None,
        reached=reached,
        on_track=on_track,
    )


__all__ = ["MIN_PACE_SECONDS", "TargetStatus", "day_start", "target_status"]
