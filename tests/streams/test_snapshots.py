"""Metric snapshots into increments (streams.snapshots): the rules, on exact numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from streams.events import MetricSnapshot
from streams.snapshots import CORRECTIONS, ObjectState, Step, spread, step
from streams.windows import WindowPlan

PLAN = WindowPlan.of([60, 300, 900, 3600, 86400], allowed_lateness=600)
DAY = 86400
NOW = 1_796_000_100.0  # on a 5-minute boundary


def snap(ago: float, published_ago: float | None = None, **metrics: float) -> MetricSnapshot:
    item: dict[str, Any] = {
        "ts": datetime.fromtimestamp(NOW - ago, UTC).isoformat(),
        "platform": "x",
        "brand": "acme",
        "object_id": "https://x.com/acme/status/1861000000000000000",
        "metrics": metrics,
    }
    if published_ago is not None:
        item["published_at"] = datetime.fromtimestamp(NOW - published_ago, UTC).isoformat()
    return MetricSnapshot.model_validate(item)


def written(result: Step, counter: str) -> float:
    return sum(a or 1 for p in result.pieces for f, a in p.fields if f == f"{counter}|x")


def run(*snapshots: MetricSnapshot) -> list[Step]:
    state: ObjectState | None = None
    steps = []
    for s in snapshots:
        result = step(state, s, PLAN, 30 * DAY, NOW)
        state = result.state or state
        steps.append(result)
    return steps


def test_growth_is_spread_evenly_and_adds_up_exactly() -> None:
    [_, grown] = run(snap(900, 900, impressions=100), snap(0, impressions=1000, spend=41.2))
    assert grown.increments == {"impressions": 900.0, "spend": 41.2}
    parts = [a for p in grown.pieces for f, a in p.fields if f == "impressions|x"]
    # 15 minutes on the 1-minute grid: 60 a minute.
    assert parts == [60.0] * 15
    spend = [a for p in grown.pieces for f, a in p.fields if f == "spend|x"]
    assert len(spend) == 15 and round(sum(spend), 2) == 41.2
    assert all(round(a, 2) == a for a in spend)  # whole cents, not 2.746667
    # The content item and the campaign get the same growth.
    assert sum(a or 0 for p in grown.pieces for f, a in p.dimension_fields
               if f.startswith("impressions|content:")) == 900  # fmt: skip


def test_an_old_publication_counts_only_the_part_a_window_can_read() -> None:
    # Published 5 days ago, first seen now: 5,000 impressions over 120 hours; the windows
    # read the last 24 hours (and a bucket): a fifth of it, give or take the rounding.
    [first] = run(snap(0, published_ago=5 * DAY, impressions=5000))
    assert first.outcome == "counted"
    inside = written(first, "impressions")
    horizon = NOW - DAY - 300
    assert inside == round(5000 * (NOW - horizon) / (5 * DAY))
    assert min(p.slot for p in first.pieces) >= horizon - 3600


def test_two_pollers_of_one_object_agree() -> None:
    # Poller A and poller B read the same post a few seconds apart, B's platform replica a
    # little behind: the increments add up to the highest total either saw.
    steps = run(
        snap(600, published_ago=700, likes=100),
        snap(595, likes=98),  # B, behind
        snap(300, likes=150),  # A
        snap(298, likes=149),  # B
        snap(0, likes=190),  # A
    )
    assert sum(written(s, "likes") for s in steps) == 190
    assert [s.outcome for s in steps] == ["counted", "counted", "counted", "counted", "counted"]
    assert sum(written(s, CORRECTIONS) for s in steps) == 2


def test_duplicates_and_late_snapshots_write_nothing() -> None:
    steps = run(snap(600, impressions=10), snap(300, impressions=20), snap(300, impressions=20),
                snap(450, impressions=15))  # fmt: skip
    assert [s.outcome for s in steps] == ["started", "counted", "unchanged", "out_of_order"]
    assert [s.state is None for s in steps] == [False, False, True, True]


def test_a_metric_first_reported_later_starts_where_it_is() -> None:
    # No publication time: likes appear in the third snapshot (the poller asked for more
    # fields); their first total is a starting point too, not a burst.
    steps = run(
        snap(900, impressions=10),
        snap(600, impressions=20),
        snap(300, impressions=30, likes=400),
        snap(0, impressions=40, likes=410),
    )
    assert [written(s, "likes") for s in steps] == [0, 0, 0, 10]


def test_the_spread_grid_stays_within_its_pieces() -> None:
    before, slots = spread(NOW - 3 * DAY, NOW, NOW - DAY)
    assert 0 < len(slots) <= 30 and abs(before - 2 / 3) < 1e-9 and slots[-1][1] == 1.0
    assert spread(NOW, NOW, NOW - DAY) == (0.0, [(int(NOW), 1.0)])
    assert spread(NOW - 2 * DAY, NOW - DAY - 400, NOW - DAY) == (1.0, [])


def test_an_unreadable_state_is_a_new_object() -> None:
    assert ObjectState.from_store({"v": "3", "s": "{not json"}) is None
    state = ObjectState(NOW, NOW - 60, True, {"likes": 5}, {}, 3)
    again = ObjectState.from_store({"v": "3", "s": state.to_json()})
    assert again == state


def test_totals_as_text_count_and_new_platform_metrics_are_left_out() -> None:
    # YouTube sends counts as strings; a poller may pass metrics we do not count (views on
    # Instagram, bookmarks on X): the totals we know still count, the others are left out.
    item = {
        "ts": datetime.fromtimestamp(NOW, UTC).isoformat(),
        "platform": "youtube",
        "brand": "acme",
        "object_id": "dQw4w9WgXcQ",
        "metrics": {"video_views": "182044", "likes": 5120, "spend": "41.20", "favorites": "0"},
    }
    assert MetricSnapshot.model_validate(item).metrics == {
        "video_views": 182044,
        "likes": 5120,
        "spend": 41.2,
    }


def test_a_publication_a_little_after_the_read_counts_from_the_read() -> None:
    # The platform's clock two minutes ahead of the poller's: no error, nothing before ts.
    [first] = run(snap(0, published_ago=-120, likes=7))
    assert first.outcome == "counted" and written(first, "likes") == 7
    assert [p.slot for p in first.pieces] == [int(NOW)]


def test_bad_snapshot_messages_are_rejects_with_reasons_and_the_rest_count() -> None:
    from streams.batch import RawMessage, plan_snapshots
    from streams.events import MAX_EVENT_BYTES

    good = snap(60, likes=3).model_dump(mode="json")
    future = {**good, "ts": datetime.fromtimestamp(NOW + 3600, UTC).isoformat()}
    other = {**good, "brand": "initech"}
    envelope = json.dumps([good, {**good, "metrics": {"likes": -1}}]).encode()
    values = [
        b"not json",
        b"{" + b" " * MAX_EVENT_BYTES + b"}",
        json.dumps(future).encode(),
        json.dumps(other).encode(),
        envelope,
        None,
    ]
    messages = [RawMessage("s", 0, i, b"acme", v) for i, v in enumerate(values)]
    plan = plan_snapshots(messages, PLAN, NOW, known={"acme": ["x"]})
    assert [m.object_id for m in plan.snapshots] == [good["object_id"]]
    assert [(m.offset, m.index) for m in plan.sources] == [(4, 0)]
    assert [(m.offset, r.reason) for m, r in plan.rejected] == [
        (0, "not_json"),
        (1, "oversize"),
        (2, "ts_in_future"),
        (3, "unknown_brand"),
        (4, "invalid_fields"),
        (5, "not_json"),
    ]
    assert plan.events == 7
