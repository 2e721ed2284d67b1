"""The Targets board. Each SMART target's progress and whether it is on track."""

from __future__ import annotations

from socialpulse.app.boards.model import GREEN, ORANGE, RED, Board, Panel, Query


def targets() -> Board:
    """Each SMART target's progress and whether it is on track."""
    return Board(
        "socialpulse-targets",
        "targets",
        "SocialPulse / Targets",
        "Each SMART target of alerts.yaml: how far from its start value to its goal, how much "
        "of the time to the deadline is used, and whether the pace reaches it in time.",
        [
            Panel(
                "On track",
                "1 (green) when the target is reached, or when the pace since its start "
                "reaches it by the deadline; 0 (red) when not.",
                [
                    Query(
                        'max by (target) (socialpulse_target_on_track{brand="$brand"})',
                        "{{target}}",
                    )
                ],
                kind="stat",
                width=8,
                height=5,
                steps=[(None, RED), (1, GREEN)],
                min=0,
                max=1,
            ),
            Panel(
                "Progress and time used",
                "progress = (KPI now - start value) / (target - start value); time used = share "
                "of the time from start to deadline gone. On track while progress >= time used.",
                [
                    Query(
                        'max by (target) (socialpulse_target_progress_ratio{brand="$brand"})',
                        "{{target}} progress",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_time_used_ratio{brand="$brand"})',
                        "{{target}} time used",
                    ),
                ],
                unit="percentunit",
                kind="bargauge",
                width=16,
                height=5,
                steps=[(None, RED), (0.5, ORANGE), (1, GREEN)],
                min=0,
                max=1,
            ),
            Panel(
                "Projection, start value and goal",
                "Where the pace since the start lands each target's KPI by the deadline, "
                "against where it started and the goal.",
                [
                    Query(
                        'max by (target) (socialpulse_target_projected_value{brand="$brand"})',
                        "{{target}} projected at deadline",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_value{brand="$brand"})',
                        "{{target}} goal",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_start_value{brand="$brand"})',
                        "{{target}} start",
                    ),
                ],
                width=24,
                preview=True,
            ),
            Panel(
                "Progress over time",
                "Progress of each target against the share of time used, over the board's "
                "time range.",
                [
                    Query(
                        'max by (target) (socialpulse_target_progress_ratio{brand="$brand"})',
                        "{{target}} progress",
                    ),
                    Query(
                        'max by (target) (socialpulse_target_time_used_ratio{brand="$brand"})',
                        "{{target}} time used",
                    ),
                ],
                unit="percentunit",
                width=24,
                preview=True,
            ),
        ],
        variables=("brand",),
        time_from="now-6h",
    )
