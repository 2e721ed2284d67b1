"""SMART targets: progress, time used, projection and on-track verdicts (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from alerts.detection.rules import Target
from alerts.detection.targets import day_start, target_status

DAY = 86400.0


def target(value: float) -> Target:
    return Target(
        name="t",
        brand="acme",
        kpi="share_of_voice",
        value=value,
        start=date(2026, 1, 1),
        deadline=date(2026, 1, 11),
    )


START = day_start(date(2026, 1, 1))


def test_day_start_is_utc_midnight() -> None:
    assert START == 1767225600.0


def test_ahead_of_the_pace_is_on_track_and_projects_past_the_target() -> None:
    status = target_status(target(0.6), 0.4, 0.2, START, START + 4 * DAY)
    assert status.progress == pytest.approx(0.5)
    assert status.time_used == pytest.approx(0.4)
    assert status.projected == pytest.approx(0.7)
    assert (status.reached, status.on_track) == (False, True)


def test_behind_the_pace_is_not_on_track() -> None:
    status = target_status(target(0.6), 0.3, 0.2, START, START + 4 * DAY)
    assert status.progress == pytest.approx(0.25)
    assert status.projected == pytest.approx(0.45)
    assert status.on_track is False


def test_a_target_below_the_start_counts_progress_downwards() -> None:
    # e.g. response time from 120 s down to 60 s: 90 s at half time is exactly on pace.
    status = target_status(target(60), 90, 120, START, START + 5 * DAY)
    assert status.progress == pytest.approx(0.5)
    assert status.projected == pytest.approx(60)
    assert status.on_track is True
    assert target_status(target(60), 100, 120, START, START + 5 * DAY).on_track is False


def test_reached_is_on_track_and_the_deadline_ends_the_race() -> None:
    reached = target_status(target(0.6), 0.65, 0.2, START, START + 2 * DAY)
    assert reached.progress == pytest.approx(1.125)
    assert (reached.reached, reached.on_track) == (True, True)
    late = target_status(target(0.6), 0.59, 0.2, START, START + 11 * DAY)
    assert late.time_used == 1.0
    assert (late.reached, late.on_track) == (False, False)


def test_no_verdict_on_the_pace_in_the_first_hour() -> None:
    early = target_status(target(0.6), 0.2, 0.2, START, START + 600)
    assert (early.projected, early.on_track) == (None, None)
    assert early.progress == 0.0
    assert target_status(target(0.6), 0.7, 0.2, START, START + 600).on_track is True
