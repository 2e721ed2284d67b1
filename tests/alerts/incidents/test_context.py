"""Ranking what drove an incident: rising terms, top posts, counts per platform (pure)."""

from __future__ import annotations

from alerts.incidents.context import rising_terms, split_counts, top_posts


def test_new_terms_rise_most_and_usual_ones_not_at_all() -> None:
    now = {"#refund": 12, "coffee": 60, "charged": 5, "once": 1}
    before = {"coffee": 500, "charged": 4}  # an hour: coffee runs at ~41 per 5 minutes
    # 5 minutes now against the 60 before: coffee expected 41.7, charged 0.3.
    assert rising_terms(now, before, 5, 60) == [
        ("#refund", 12, 0.0),
        ("charged", 5, 0.3),
        ("coffee", 60, 41.7),
    ]
    assert rising_terms({"coffee": 30}, before, 5, 60) == []  # below its usual rate
    # The brand's own name is in every mention: it says nothing.
    assert rising_terms({"acme": 40, "#acme": 9, "burnt": 7}, {}, 5, 60, ignore={"acme"}) == [
        ("burnt", 7, 0.0)
    ]


def test_top_posts_by_reach_once_each() -> None:
    posts = [
        {"id": "a", "reach": 10},
        {"id": "b", "reach": 900},
        {"id": "b", "reach": 900},
        {"id": "c", "reach": 50},
        {"id": "d", "reach": 5},
    ]
    assert [p["id"] for p in top_posts(posts)] == ["b", "c", "a"]


def test_counts_keep_the_incident_platforms_and_negative_terms_apart() -> None:
    minutes = [
        {"x|refund": "3", "x|-|refund": "2", "x|lang:en": "3", "tiktok|refund": "9"},
        {"x|late": "1", "x|lang:de": "1"},
    ]
    terms, languages = split_counts(minutes, ["x"], negative=False)
    assert (dict(terms), dict(languages)) == ({"refund": 3, "late": 1}, {"en": 3, "de": 1})
    negative, _ = split_counts(minutes, ["x"], negative=True)
    assert dict(negative) == {"refund": 2}
