"""Events that stand for many (a platform's 200 likes of a post at once) counted exactly once on
the real stack: redelivered, they change nothing; an impressions count adds no reach."""

from __future__ import annotations

import uuid

from tests.conftest import Worker
from tests.e2e.helpers.events import interaction, produce
from tests.e2e.helpers.reading import kpis_report, value, wait_until


def test_a_count_of_likes_counts_once_by_id_under_its_post(pipeline: Worker) -> None:
    settings = pipeline.settings
    topic = settings.pipeline.topics.interactions
    run = uuid.uuid4().hex[:6]
    post = f"https://www.facebook.com/globex/posts/{run}"
    likes = {**interaction("globex", "facebook", "like"), "content_id": post, "count": 200}
    one = {**interaction("globex", "facebook", "like"), "content_id": post}
    views = {
        **interaction("globex", "facebook", "impression"),
        "content_id": post,
        "count": 5000,
        "user_id": "platform-total",
    }
    produce(settings, topic, [likes, one, views])
    produce(settings, topic, [likes, views])  # delivered again, as a retrying poller does

    def counted() -> dict[str, float] | None:
        report = kpis_report(settings, "globex", "15m", "--by", "content", "--top", "50")
        item = report["counters"].get(post) or {}
        done = item.get("likes") == 201 and item.get("impressions") == 5000
        return item if done else None

    item = wait_until(counted, what="201 likes and 5,000 impressions of the post")
    assert (item["likes"], item["impressions"]) == (201, 5000)
    # A count of impressions has no one viewer behind it: it is not reach.
    report = kpis_report(settings, "globex", "15m")
    assert report["counters"]["facebook"].get("reach", 0) == 0
    # The running totals on /metrics, from which Prometheus derives any window.
    url = pipeline.metrics_url
    totals = {
        c: value(url, f"socialpulse_counted_{c}_total", brand="globex", platform="facebook")
        for c in ("likes", "impressions")
    }
    assert totals == {"likes": 201, "impressions": 5000}
