"""Customer care: which messages are inbound or replies, and the response-time maths."""

from __future__ import annotations

from streams.batch import RawMessage, plan_batch
from streams.customer_care import backlog, response_quantiles
from streams.windows import WindowPlan
from tests.streams.test_windows_and_counters import shown

PLAN = WindowPlan.of([60, 300, 900, 3600, 86400], 600)
NOW = 1795339805.0  # 2026-11-22T09:30:05Z


def message(event_id: str, extra: str) -> RawMessage:
    body = (
        f'{{"id":"{event_id}","ts":"2026-11-22T09:30:05Z","platform":"x","brand":"acme",'
        f'"author":"@jo","text":"where is my order?","sentiment":"negative"{extra}}}'
    )
    return RawMessage("m", 0, 0, b"acme", body.encode())


def test_inbound_counts_as_a_mention_and_a_reply_only_as_a_brand_reply() -> None:
    plan = plan_batch(
        [
            message("q1", ',"needs_reply":true'),
            message("q2", ',"needs_reply":true,"conversation_id":"thread-7"'),
            message("r1", ',"from_brand":true,"reply_to":"q1"'),
            message("r2", ',"from_brand":true,"conversation_id":"thread-7"'),
        ],
        "mention",
        PLAN,
        NOW,
        limit_author_rate=True,
    )
    assert [(shown(e.fields), e.care, e.author, e.unique) for e in plan.counted] == [
        (
            [
                "mentions|x",
                "mentions_negative|x",
                "sentiment_score_sum|x=-1.0",
                "inbound_needing_reply|x",
            ],
            ("inbound", "q1"),
            "@jo",
            ("unique_authors|x", "@jo"),
        ),
        (
            [
                "mentions|x",
                "mentions_negative|x",
                "sentiment_score_sum|x=-1.0",
                "inbound_needing_reply|x",
            ],
            ("inbound", "thread-7"),
            "@jo",
            ("unique_authors|x", "@jo"),
        ),
        (["brand_replies|x"], ("reply", "q1"), None, None),
        (["brand_replies|x"], ("reply", "thread-7"), None, None),
    ]


def test_a_reply_must_say_what_it_answers() -> None:
    plan = plan_batch([message("r", ',"from_brand":true')], "mention", PLAN, NOW)
    assert [invalid.detail for _, invalid in plan.rejected] == [
        "from_brand: a brand reply needs reply_to or conversation_id"
    ]


def test_median_and_p90_are_exact_nearest_rank() -> None:
    assert response_quantiles([30, 10, 20]) == {
        "response_time_median_seconds": 20.0,
        "response_time_p90_seconds": 30,
    }
    ten = [float(s) for s in range(10, 110, 10)]  # 10..100
    assert response_quantiles(ten) == {
        "response_time_median_seconds": 55.0,
        "response_time_p90_seconds": 90.0,
    }
    assert response_quantiles([]) == {}


def test_backlog_ages_its_oldest_message() -> None:
    assert backlog(3, 1000.0, 1600.0) == {"unanswered": 3, "oldest_unanswered_seconds": 600.0}
    assert backlog(0, None, 1600.0) == {"unanswered": 0, "oldest_unanswered_seconds": 0.0}
