"""Metric snapshots on the real stack: a platform's running totals polled again and again,
duplicated, out of order and going down, count each post's growth exactly once; a worker killed
with kill -9 mid-stream and restarted changes none of it."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.topics import ensure_topics
from tests.conftest import Worker, run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import produce
from tests.e2e.helpers.reading import dead_letters, kpi, kpis_report, value, wait_until


def snapshot(
    brand: str, platform: str, post: str, ago: float, published_ago: float | None = None,
    **metrics: float,
) -> dict[str, Any]:  # fmt: skip
    """A poller's snapshot of ``post``: its totals ``ago`` seconds ago."""
    item: dict[str, Any] = {
        "schema_version": 1,
        "ts": (datetime.now(UTC) - timedelta(seconds=ago)).isoformat(),
        "platform": platform,
        "brand": brand,
        "object_id": post,
        "metrics": metrics,
    }
    if published_ago is not None:
        item["published_at"] = (datetime.now(UTC) - timedelta(seconds=published_ago)).isoformat()
    return item


def content_counters(settings: Settings, brand: str, window: str = "1h") -> dict[str, Any]:
    report = kpis_report(settings, brand, window, "--by", "content", "--top", "50")
    return dict(report["counters"])


def test_snapshots_count_each_posts_growth_once(pipeline: Worker) -> None:
    settings = pipeline.settings
    topic = settings.pipeline.topics.snapshots
    run = uuid.uuid4().hex[:6]
    reel = f"https://www.instagram.com/reel/{run}/"
    video = f"yt-{run}"
    first = snapshot("acme", "instagram", reel, 1500, published_ago=1800,
                     impressions=4200, reach=3100, likes=120, comments=9, shares=4)  # fmt: skip
    late = snapshot("acme", "instagram", reel, 1200, impressions=4800, reach=3400, likes=125)
    newest = snapshot("acme", "instagram", reel, 900,
                      impressions=5600, reach=3900, likes=118, comments=11, shares=6)  # fmt: skip
    recovered = snapshot("acme", "instagram", reel, 600, impressions=6000, reach=4100, likes=131)
    # A video found without its publication time: its first totals are a starting point.
    start = snapshot("acme", "youtube", video, 900, video_views=90_000, likes=2_000)
    grown = snapshot("acme", "youtube", video, 300, video_views=91_500, likes=2_030)
    produce(settings, topic, [first, newest])
    produce(settings, topic, [late, newest, first])  # out of order and delivered again
    produce(settings, topic, [recovered, start, grown, grown])
    bad = snapshot("acme", "instagram", reel, 0, likes=-3)
    produce(settings, topic, [bad])

    def counted() -> dict[str, Any] | None:
        counters = content_counters(settings, "acme")
        done = counters.get(reel, {}).get("likes") == 131 and video in counters
        return counters if done else None

    counters = wait_until(counted, what="the reel's 131 likes and the video's growth")
    reel_counts = {k: counters[reel].get(k, 0) for k in
                   ("impressions", "reported_reach", "likes", "comments", "shares")}  # fmt: skip
    # From zero at publication, past the highest totals only (likes went 125 -> 118 -> 131).
    assert reel_counts == {
        "impressions": 6000,
        "reported_reach": 4100,
        "likes": 131,
        "comments": 11,
        "shares": 6,
    }
    assert {k: counters[video].get(k, 0) for k in ("video_views", "likes")} == {
        "video_views": 1500,
        "likes": 30,
    }
    url = pipeline.metrics_url
    # One correction (likes 125 -> 118); the rates on /metrics are the platforms' own.
    assert kpi(url, "snapshot_corrections", "acme", "instagram", "1h") == 1
    rate = value(url, "socialpulse_engagement_rate_ratio", brand="acme", platform="instagram",
                 window="1h")  # fmt: skip
    assert rate is not None and abs(rate - (131 + 11 + 6) / 4100) < 1e-9
    outcomes = {
        o: value(url, "socialpulse_snapshots_total", outcome=o) or 0
        for o in ("counted", "started", "unchanged", "out_of_order")
    }
    # first, newest, recovered, grown counted; start started; newest again and grown again
    # unchanged; late and first again out of order.
    assert outcomes == {"counted": 4, "started": 1, "unchanged": 2, "out_of_order": 2}
    [(letter, headers)] = dead_letters(settings, topic, stop_after=1)
    assert json.loads(letter)["metrics"] == {"likes": -3}
    assert headers["reason"] == b"invalid_fields"
    assert headers["detail"] == b"metrics: likes: -3 is outside 0 to 1e12"


POSTS = 12
POLLS = 40


def _poll_stream(
    settings: Settings, finals: dict[str, dict[str, int]], done: threading.Event
) -> None:
    """Every post polled POLLS times, totals growing, at about 50 snapshots a second (10 s)."""
    producer = KafkaProducer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers, acks="all", linger_ms=5,
        retries=2**31 - 1, delivery_timeout_ms=120_000, max_block_ms=120_000,
    )  # fmt: skip
    topic = settings.pipeline.topics.snapshots
    run = uuid.uuid4().hex[:6]
    for poll in range(POLLS):
        for p in range(POSTS):
            post = f"https://x.com/acme/status/{run}{p:04d}"
            totals = {"impressions": 500 * (poll + 1) + p, "likes": 7 * (poll + 1) + p % 3,
                      "clicks": 2 * poll}  # fmt: skip
            finals[post] = totals
            item = snapshot("acme", "x", post, 60 * (POLLS - poll), published_ago=60 * (POLLS + 1),
                            **totals)  # fmt: skip
            producer.send(topic, key=b"acme", value=json.dumps(item).encode())
        time.sleep(0.25)
    producer.flush(60)
    producer.close()
    done.set()


def test_kill_9_mid_stream_counts_every_snapshot_once(stack: Settings, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:10]
    # Commits every 30 s: the kill lands with snapshots counted whose offsets are not
    # committed, so the restarted worker reads them again; their objects' state must make them
    # change nothing.
    folder = write_config(tmp_path / "config", run, worker={"commit_interval": 30})
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    first = start_worker(folder, tmp_path / "worker-1.log")
    finals: dict[str, dict[str, int]] = {}
    done = threading.Event()
    producer = threading.Thread(target=_poll_stream, args=(settings, finals, done))
    producer.start()
    # Killed once it has counted some, not after a fixed time: on a loaded machine (tests in
    # parallel) a worker may take seconds to count its first batch.
    at_kill = wait_until(
        lambda: content_counters(settings, "acme") or None, timeout=30, what="the first counts"
    )
    stop_worker(first, hard=True)  # kill -9
    second = start_worker(folder, tmp_path / "worker-2.log")
    try:
        producer.join(90)
        assert done.is_set(), "the producer did not finish"

        def all_in() -> dict[str, Any] | None:
            counters = content_counters(settings, "acme")
            ok = all(counters.get(p, {}).get("likes") == t["likes"] for p, t in finals.items())
            return counters if ok else None

        counters = wait_until(all_in, timeout=90, what="every post's final likes")
        time.sleep(3)  # a late double count, if any, would land now
        counters = content_counters(settings, "acme")
        in_at_kill = sum(at_kill.get(p, {}).get("impressions", 0) for p in finals)
        total = sum(t["impressions"] for t in finals.values())
        assert 0 < in_at_kill < total  # the kill really was mid-stream
        for post, totals in finals.items():
            got = {k: counters[post].get(k, 0) for k in totals}
            assert got == totals, post
        redelivered = sum(
            value(second.metrics_url, "socialpulse_snapshots_total", outcome=o) or 0
            for o in ("unchanged", "out_of_order")
        )
        assert redelivered > 0  # the restarted worker did get snapshots counted before
    finally:
        stop_worker(second)


def test_a_youtube_videos_list_polled_twice_counts_its_growth(
    pipeline: Worker, tmp_path: Path
) -> None:
    # The response of YouTube Data API v3 videos.list (part=snippet,statistics), numbers as
    # strings, read by `socialpulse ingest --mapping youtube_videos` at two polls.
    settings = pipeline.settings
    shipped = Path(__file__).resolve().parents[2] / "config/ingest.yaml"
    shutil.copyfile(shipped, settings.config_dir / "ingest.yaml")  # its mappings
    video = f"yt{uuid.uuid4().hex[:9]}"
    published = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def poll(views: int, likes: int) -> Path:
        path = tmp_path / f"videos-{views}.json"
        item = {"kind": "youtube#video", "id": video,
                "snippet": {"publishedAt": published, "title": "Winter menu"},
                "statistics": {"viewCount": str(views), "likeCount": str(likes),
                               "favoriteCount": "0", "commentCount": "7"}}  # fmt: skip
        path.write_text(json.dumps({"kind": "youtube#videoListResponse", "items": [item]}))
        return path

    for views, likes in ((1000, 40), (1500, 52), (1500, 52)):
        done = run_cli(settings, "ingest", str(poll(views, likes)), "--mapping", "youtube_videos")
        assert done.returncode == 0, done.stderr
        time.sleep(1.1)  # the next poll is read at a later time

    def counted() -> dict[str, Any] | None:
        item = content_counters(settings, "globex", "1d").get(video, {})
        return item if item.get("video_views") == 1500 and item.get("likes") == 52 else None

    item = wait_until(counted, what="the video's 1,500 views and 52 likes")
    assert {k: item.get(k) for k in ("video_views", "likes", "comments")} == {
        "video_views": 1500,
        "likes": 52,
        "comments": 7,
    }
