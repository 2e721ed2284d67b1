"""Bucket maths, window tiers, lateness and counter bookkeeping (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from streams.batch import RawMessage, plan_batch
from streams.counted import CountedEvent
from streams.counters import by_counter, sum_buckets
from streams.decoding import InvalidEvent
from streams.windows import (
    READ_MARGIN,
    WindowPlan,
    bucket_start,
    tier_for,
    window_buckets,
    window_reads,
)

NOW = datetime(2026, 11, 22, 9, 30, 7, tzinfo=UTC).timestamp()
PLAN = WindowPlan.of([60, 300, 900, 3600, 86400], allowed_lateness=600, max_future=300)


def shown(adds: Sequence[tuple[str, float | None]]) -> list[str]:
    """Increments as people write them: ``name`` for +1, ``name=amount`` for an amount."""
    return [name if amount is None else f"{name}={amount!r}" for name, amount in adds]


def test_bucket_start_floors_to_the_bucket() -> None:
    ts = datetime(2026, 11, 22, 9, 30, 17, tzinfo=UTC)
    assert bucket_start(ts, 10) == int(ts.timestamp()) - 7
    assert bucket_start(1_000_009.9, 10) == 1_000_000


def test_each_window_gets_the_finest_tier_within_300_buckets() -> None:
    assert [tier_for(w) for w in (60, 300, 900, 3600, 86400, 7 * 86400)] == [
        10,
        10,
        10,
        60,
        300,
        3600,
    ]
    assert tier_for(15) is None  # not a whole number of 10 s buckets
    # Hours are written too, as a 24h window is read by hours (window_reads).
    assert PLAN.tiers == (10, 60, 300, 3600)


def test_a_window_is_read_from_the_fewest_buckets_that_add_up_to_it_exactly() -> None:
    tiers = (10, 60, 300, 3600)
    for now in (1_796_000_000.0, 1_796_000_123.4, 1_796_003_599.0, 1_796_001_800.0):
        for window, own in ((60, 10), (300, 10), (900, 10), (3600, 60), (86400, 300)):
            parts = window_reads(now, window, tiers)
            covered = sorted(s for tier, start in parts for s in range(start, start + tier, own))
            assert covered == sorted(window_buckets(now, window, own)), (now, window)
            assert len(parts) == len(set(parts))
    # 24 hours of 5-minute buckets: 288 reads; by hours and the edges' 5 minutes, at most 45.
    assert len(window_reads(1_796_000_123.4, 86400, tiers)) <= 45
    assert len(window_reads(1_796_000_123.4, 86400, (10, 60, 300))) == 288


def test_window_is_the_newest_buckets_of_its_tier() -> None:
    starts = window_buckets(1_000_005.0, 300, 10)
    assert len(starts) == 30
    assert starts[0] == 1_000_000 and starts[-1] == 1_000_000 - 290
    assert len(window_buckets(NOW, 86400, PLAN.tier(86400))) == 288


def test_keys_expire_when_no_window_reads_them_any_more() -> None:
    # A 10 s bucket is read by windows up to 15m; a 5 min bucket by the 24h window; both by an
    # evaluation reading its tick's windows up to READ_MARGIN late.
    assert READ_MARGIN == 120
    assert PLAN.bucket_expires_at(1_000_000, 10) == 1_000_000 + 10 + 900 + 120
    assert PLAN.bucket_expires_at(1_000_200, 300) == 1_000_200 + 300 + 86400 + 120
    # Event ids are remembered for their minute plus the allowed lateness.
    assert PLAN.dedupe_expires_at(1_000_030) == 1_000_020 + 60 + 600  # minute starts at ..020


def test_timing_by_allowed_lateness_and_clock_skew() -> None:
    assert PLAN.timing(NOW - 600, NOW) == "on_time"
    assert PLAN.timing(NOW - 601, NOW) == "too_late"
    assert PLAN.timing(NOW + 300, NOW) == "on_time"
    assert PLAN.timing(NOW + 301, NOW) == "future"


def test_a_window_no_tier_serves_is_refused() -> None:
    with pytest.raises(ValueError, match="window of 15s is not a whole number of 10s buckets"):
        WindowPlan.of([15], 600)


def test_bucket_hashes_add_up_per_counter_and_platform() -> None:
    counts = sum_buckets(
        [{"mentions|x": "2", "likes|x": "1"}, {"mentions|x": 3, "mentions|tiktok": "1"}]
    )
    assert counts == {("mentions", "x"): 5, ("likes", "x"): 1, ("mentions", "tiktok"): 1}
    assert by_counter(counts, "mentions") == {"x": 5, "tiktok": 1}


def mention_at(event_id: str, ts: str) -> bytes:
    return (
        f'{{"id":"{event_id}","ts":"{ts}","platform":"x","brand":"acme","author":"a",'
        f'"text":"t","sentiment":"negative"}}'
    ).encode()


def test_batch_plan_counts_timely_events_and_sets_aside_late_and_bad_ones() -> None:
    messages = [
        RawMessage("mentions", 0, 1, b"acme", mention_at("m1", "2026-11-22T09:30:05Z")),
        RawMessage("mentions", 0, 2, b"acme", b"{oops"),
        RawMessage("mentions", 0, 3, b"acme", mention_at("m3", "2026-11-22T09:20:00Z")),
        RawMessage("mentions", 0, 4, b"acme", mention_at("m4", "2026-11-22T09:40:00Z")),
    ]
    plan = plan_batch(messages, "mention", PLAN, NOW)
    ts = datetime(2026, 11, 22, 9, 30, 5, tzinfo=UTC).timestamp()
    assert plan.counted == [
        CountedEvent(
            "acme",
            "m1",
            ts,
            [("mentions|x", None), ("mentions_negative|x", None), ("sentiment_score_sum|x", -1.0)],
            "mention",
            "upstream",
            filtered_fields=(("filtered|x", None),),
            unique=("unique_authors|x", "a"),
            platform="x",
            sample={
                "id": "m1",
                "platform": "x",
                "author": "a",
                "text": "t",
                "url": None,
                "reach": 0,
                "lang": "unknown",
                "sentiment": "negative",
                "terms": [],
            },
        )
    ]
    assert [m.offset for m in plan.too_late] == [3]
    assert [(m.offset, r) for m, r in plan.rejected] == [
        (
            2,
            InvalidEvent(
                "not_json", "not JSON: Invalid JSON: key must be a string at line 1 column 2"
            ),
        ),
        (
            4,
            InvalidEvent(
                "ts_in_future", "ts: 2026-11-22T09:40:00+00:00 is more than 5m ahead of now"
            ),
        ),
    ]


def test_amounts_are_summed_with_their_cents_and_counts_stay_whole() -> None:
    counts = sum_buckets(
        [{"revenue|x": "45.5", "orders|x": "1"}, {"revenue|x": "10", "orders|x": 2}]
    )
    assert counts == {("revenue", "x"): 55.5, ("orders", "x"): 3}
    assert isinstance(counts[("orders", "x")], int)


def test_orders_count_and_add_revenue_spend_adds_its_amount() -> None:
    def interaction(kind: str, value: str) -> bytes:
        return (
            f'{{"id":"{kind}","ts":"2026-11-22T09:30:05Z","platform":"x","brand":"acme",'
            f'"kind":"{kind}","content_id":"c","user_id":"u"{value}}}'
        ).encode()

    messages = [
        RawMessage("i", 0, n, b"acme", interaction(kind, value))
        for n, (kind, value) in enumerate(
            [("order", ',"value":45.5'), ("spend", ',"value":12'), ("delivered", "")]
        )
    ]
    plan = plan_batch(messages, "interaction", PLAN, NOW)
    assert [shown(e.fields) for e in plan.counted] == [
        ["orders|x", "revenue|x=45.5"],
        ["spend|x=12.0"],
        ["delivered|x"],
    ]


def test_bots_flagged_or_listed_count_only_as_filtered() -> None:
    def mention(event_id: str, author: str, extra: str = "") -> RawMessage:
        body = (
            f'{{"id":"{event_id}","ts":"2026-11-22T09:30:05Z","platform":"x","brand":"acme",'
            f'"author":"{author}","text":"great","sentiment":"positive"{extra}}}'
        )
        return RawMessage("m", 0, 0, b"acme", body.encode())

    plan = plan_batch(
        [mention("m1", "@Spammer"), mention("m2", "@jo", ',"is_bot":true'), mention("m3", "@jo")],
        "mention",
        PLAN,
        NOW,
        bot_authors={"@spammer"},
        limit_author_rate=True,
    )
    assert [(e.event_id, shown(e.fields), e.excluded, e.author) for e in plan.counted] == [
        ("m1", ["filtered|x"], "bot", None),
        ("m2", ["filtered|x"], "bot", None),
        ("m3", ["mentions|x", "mentions_positive|x", "sentiment_score_sum|x=1.0"], None, "@jo"),
    ]


def test_interaction_batch_uses_catalog_counter_names() -> None:
    event = (
        b'{"id":"i1","ts":"2026-11-22T09:30:05Z","platform":"tiktok","brand":"acme",'
        b'"kind":"video_complete","content_id":"c","user_id":"u"}'
    )
    plan = plan_batch([RawMessage("interactions", 3, 9, b"acme", event)], "interaction", PLAN, NOW)
    assert shown(plan.counted[0].fields) == ["video_completes|tiktok"]
    assert plan.counted[0].sentiment_source is None


def survey_or_snapshot(kind: str, value: object) -> RawMessage:
    body = (
        f'{{"id":"{kind}-{value}","ts":"2026-11-22T09:30:05Z","platform":"x","brand":"acme",'
        f'"kind":"{kind}","content_id":"c","user_id":"u","value":{value}}}'
    )
    return RawMessage("i", 0, 0, b"acme", body.encode())


def test_survey_answers_count_by_band() -> None:
    answers = [("nps_response", n) for n in (0, 6, 7, 8, 9, 10)] + [
        ("csat_response", n) for n in (3, 4, 5)
    ]
    plan = plan_batch([survey_or_snapshot(*a) for a in answers], "interaction", PLAN, NOW)
    assert [shown(e.fields) for e in plan.counted] == [
        ["nps_responses|x", "nps_detractors|x"],
        ["nps_responses|x", "nps_detractors|x"],
        ["nps_responses|x"],
        ["nps_responses|x"],
        ["nps_responses|x", "nps_promoters|x"],
        ["nps_responses|x", "nps_promoters|x"],
        ["csat_responses|x"],
        ["csat_responses|x", "csat_satisfied|x"],
        ["csat_responses|x", "csat_satisfied|x"],
    ]


def test_scores_outside_their_scale_are_rejected_with_the_scale() -> None:
    plan = plan_batch(
        [
            survey_or_snapshot("nps_response", 11),
            survey_or_snapshot("csat_response", 0),
            survey_or_snapshot("nps_response", 7.5),
            survey_or_snapshot("followers", 10.5),
        ],
        "interaction",
        PLAN,
        NOW,
    )
    assert [invalid.detail for _, invalid in plan.rejected] == [
        "value: 11 is not the score, a whole number from 0 to 10",
        "value: 0 is not the score, a whole number from 1 to 5",
        "value: 7.5 is not the score, a whole number from 0 to 10",
        "value: 10.5 is not a whole number of followers",
    ]


def test_a_followers_snapshot_sets_a_gauge_and_counts_nothing() -> None:
    plan = plan_batch([survey_or_snapshot("followers", 12000)], "interaction", PLAN, NOW)
    assert [(shown(e.fields), e.gauge) for e in plan.counted] == [([], ("followers|x", 12000.0))]


def test_an_interaction_in_a_campaign_also_counts_for_the_campaign() -> None:
    def event(kind: str, extra: str) -> RawMessage:
        body = (
            f'{{"id":"{kind}","ts":"2026-11-22T09:30:05Z","platform":"tiktok","brand":"acme",'
            f'"kind":"{kind}","content_id":"c","user_id":"u"{extra}}}'
        )
        return RawMessage("i", 0, 0, b"acme", body.encode())

    plan = plan_batch(
        [
            event("click", ',"campaign":"spring-26"'),
            event("spend", ',"campaign":"spring-26","value":12.5'),
            event("like", ""),
        ],
        "interaction",
        PLAN,
        NOW,
    )
    assert [(shown(e.fields), shown(e.dimension_fields)) for e in plan.counted] == [
        (["clicks|tiktok"], ["clicks|content:c", "clicks|campaign:spring-26"]),
        (["spend|tiktok=12.5"], ["spend|content:c=12.5", "spend|campaign:spring-26=12.5"]),
        (["likes|tiktok"], ["likes|content:c"]),
    ]


def test_strict_mode_dead_letters_unknown_brands_and_platforms() -> None:
    def mention(brand: str, platform: str) -> RawMessage:
        body = (
            f'{{"id":"{brand}-{platform}","ts":"2026-11-22T09:30:05Z","platform":"{platform}",'
            f'"brand":"{brand}","author":"@jo","text":"hi","sentiment":"neutral"}}'
        )
        return RawMessage("m", 0, 0, brand.encode(), body.encode())

    messages = [mention("acme", "X"), mention("acme", "myspace"), mention("umbrella", "x")]
    lenient = plan_batch(messages, "mention", PLAN, NOW)
    assert [e.event_id for e in lenient.counted] == ["acme-X", "acme-myspace", "umbrella-x"]
    strict = plan_batch(
        messages, "mention", PLAN, NOW, known={"acme": {"x", "tiktok"}, "globex": {"x"}}
    )
    assert [e.event_id for e in strict.counted] == ["acme-X"]  # platforms are lower-cased
    assert [(m.value, r.reason, r.detail) for m, r in strict.rejected] == [
        (
            messages[1].value,
            "unknown_platform",
            "platform: 'myspace' is not a platform of acme in brands.yaml (tiktok, x)",
        ),
        (
            messages[2].value,
            "unknown_brand",
            "brand: 'umbrella' is not in brands.yaml (known: acme, globex)",
        ),
    ]


def test_an_event_whose_processing_raises_is_a_reject_of_its_own(monkeypatch) -> None:
    """A fault of ours or of a library on one event (here the sentiment scorer) costs that event
    only: processing_error with the exception's type and message; the batch goes on."""
    import streams.batch

    real = streams.batch.mention_sentiment

    def scorer(mention):  # type: ignore[no-untyped-def]
        if mention.text == "poison":
            raise ZeroDivisionError("float division by zero")
        return real(mention)

    monkeypatch.setattr(streams.batch, "mention_sentiment", scorer)
    envelope = (
        b"["
        + b",".join(
            json.dumps(
                {
                    "id": f"m{n}",
                    "ts": "2026-11-22T09:30:05Z",
                    "platform": "x",
                    "brand": "acme",
                    "author": "a",
                    "text": "poison" if n == 1 else "fine",
                }
            ).encode()
            for n in range(3)
        )
        + b"]"
    )
    plan = plan_batch([RawMessage("mentions", 0, 7, b"acme", envelope)], "mention", PLAN, NOW)
    assert [e.event_id for e in plan.counted] == ["m0", "m2"]
    [(message, invalid)] = plan.rejected
    assert (message.offset, message.index) == (7, 1)
    assert json.loads(message.value or b"")["text"] == "poison"
    assert invalid == InvalidEvent("processing_error", "ZeroDivisionError: float division by zero")
    assert plan.events == 3


def test_a_message_the_decoder_fails_on_is_a_reject_of_its_own(monkeypatch) -> None:
    import streams.batch

    real = streams.batch.decode_message

    def decoder(raw, model):  # type: ignore[no-untyped-def]
        if raw == b"boom":
            raise MemoryError("out of memory")
        return real(raw, model)

    monkeypatch.setattr(streams.batch, "decode_message", decoder)
    plan = plan_batch(
        [
            RawMessage("mentions", 0, 1, b"acme", b"boom"),
            RawMessage("mentions", 0, 2, b"acme", mention_at("m2", "2026-11-22T09:30:05Z")),
        ],
        "mention",
        PLAN,
        NOW,
    )
    assert [e.event_id for e in plan.counted] == ["m2"]
    assert [(m.offset, r) for m, r in plan.rejected] == [
        (1, InvalidEvent("processing_error", "MemoryError: out of memory"))
    ]
