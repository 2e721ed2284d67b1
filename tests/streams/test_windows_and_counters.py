"""Bucket maths and counter bookkeeping (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.batch import RawMessage, plan_batch
from streams.counters import by_counter, sum_buckets
from streams.events import InvalidEvent
from streams.redis_counts import CountedEvent
from streams.windows import bucket_start, bucket_ttl, window_buckets


def test_bucket_start_floors_to_the_bucket() -> None:
    ts = datetime(2026, 11, 22, 9, 30, 17, tzinfo=UTC)
    assert bucket_start(ts, 10) == int(ts.timestamp()) - 7
    assert bucket_start(1_000_009.9, 10) == 1_000_000


def test_five_minute_window_is_thirty_ten_second_buckets_newest_first() -> None:
    starts = window_buckets(1_000_005.0, 300, 10)
    assert len(starts) == 30
    assert starts[0] == 1_000_000 and starts[-1] == 1_000_000 - 290


def test_ttl_covers_the_longest_window() -> None:
    assert bucket_ttl(3600, 10) == 3620


def test_bucket_hashes_add_up_per_counter_and_platform() -> None:
    counts = sum_buckets(
        [{"mentions|x": "2", "likes|x": "1"}, {"mentions|x": 3, "mentions|tiktok": "1"}]
    )
    assert counts == {("mentions", "x"): 5, ("likes", "x"): 1, ("mentions", "tiktok"): 1}
    assert by_counter(counts, "mentions") == {"x": 5, "tiktok": 1}


def test_batch_plan_counts_valid_events_and_rejects_bad_ones() -> None:
    good = (
        b'{"id":"m1","ts":"2026-11-22T09:30:05Z","platform":"x","brand":"acme",'
        b'"author":"a","text":"t","sentiment":"negative"}'
    )
    messages = [
        RawMessage("mentions", 0, 1, b"acme", good),
        RawMessage("mentions", 0, 2, b"acme", b"{oops"),
    ]
    plan = plan_batch(messages, "mention", 10)
    ts = int(datetime(2026, 11, 22, 9, 30, tzinfo=UTC).timestamp())
    assert plan.counted == [
        CountedEvent(
            "acme", "m1", ts, ["mentions|x", "mentions_negative|x"], sentiment_source="upstream"
        )
    ]
    assert [(m.offset, r.reason) for m, r in plan.rejected] == [(2, "not_json")]
    assert isinstance(plan.rejected[0][1], InvalidEvent)


def test_interaction_batch_uses_catalog_counter_names() -> None:
    event = (
        b'{"id":"i1","ts":"2026-11-22T09:30:05Z","platform":"tiktok","brand":"acme",'
        b'"kind":"video_complete","content_id":"c","user_id":"u"}'
    )
    plan = plan_batch([RawMessage("interactions", 3, 9, b"acme", event)], "interaction", 60)
    assert plan.counted[0].fields == ["video_completes|tiktok"]
    assert plan.counted[0].bucket % 60 == 0
