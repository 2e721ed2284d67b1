"""The shipped platform mappings of config/ingest.yaml: given a payload as the platform's
reference documents it, exactly these events, through the path ``socialpulse ingest FILE
--mapping NAME`` takes (ingest.files.ingest_stream: records, mapping, validation, topic)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from ingest.config import load_ingest
from ingest.files import IngestSummary, ingest_stream
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
POLLED = "2026-11-30T12:00:00+00:00"  # ts: {now: true}
SETTINGS = load_settings(project_home() / "config")
MAPPINGS = load_ingest(project_home() / "config").mappings
SNAPSHOTS = SETTINGS.pipeline.topics.snapshots


class Recorder:
    """Stands in for EventProducer: remembers what was sent, per topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, event: dict[str, Any]) -> None:
        self.sent.append((topic, event))

    def send_due(self) -> None:
        pass


def ingest(
    name: str, text: str, fmt: str = "json"
) -> tuple[list[tuple[str, dict[str, Any]]], IngestSummary, list[dict[str, Any]]]:
    """What ``socialpulse ingest`` sends for ``text`` with mapping ``name``, its summary and
    its rejects."""
    producer, rejects = Recorder(), io.StringIO()
    summary = ingest_stream(
        io.StringIO(text),
        fmt,  # type: ignore[arg-type]
        SETTINGS,
        producer,  # type: ignore[arg-type]
        NOW,
        (name, MAPPINGS[name]),
        rejects=rejects,
    )
    return producer.sent, summary, [json.loads(line) for line in rejects.getvalue().splitlines()]


def test_instagram_media_with_insights_are_snapshots_polled_now() -> None:
    # GET /v25.0/{ig-user-id}/media?fields=id,timestamp,permalink,media_product_type,
    # like_count,comments_count,insights.metric(views,reach,saved,shares)
    payload = {
        "data": [
            {
                "id": "17895695668004550",
                "timestamp": "2026-11-29T18:30:00+0000",
                "permalink": "https://www.instagram.com/p/C1a2b3c4d5/",
                "media_product_type": "FEED",
                "like_count": 412,
                "comments_count": 37,
                "insights": {
                    "data": [
                        {
                            "name": "views",
                            "period": "lifetime",
                            "values": [{"value": 10250}],
                            "id": "17895695668004550/insights/views/lifetime",
                        },
                        {"name": "reach", "period": "lifetime", "values": [{"value": 8012}]},
                        {"name": "saved", "period": "lifetime", "values": [{"value": 95}]},
                        {"name": "shares", "period": "lifetime", "values": [{"value": 41}]},
                    ]
                },
            },
            {
                "id": "18023345989012587",
                "timestamp": "2026-11-30T09:00:00+0000",
                "media_product_type": "REELS",
                "like_count": 5,
                "comments_count": 0,
            },
        ],
        "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}},
    }
    sent, summary, rejects = ingest("graph_instagram_media", json.dumps(payload, indent=2))
    assert rejects == []
    assert summary.accepted == {"snapshot": 2}
    assert sent == [
        (
            SNAPSHOTS,
            {
                "ts": POLLED,
                "platform": "instagram",
                "brand": "acme",
                "object_id": "17895695668004550",
                "object_type": "post",
                "published_at": "2026-11-29T18:30:00+00:00",
                "metrics": {
                    "impressions": 10250,
                    "reach": 8012,
                    "saves": 95,
                    "shares": 41,
                    "likes": 412,
                    "comments": 37,
                },
            },
        ),
        (
            SNAPSHOTS,
            {
                "ts": POLLED,
                "platform": "instagram",
                "brand": "acme",
                "object_id": "18023345989012587",
                "object_type": "reel",
                "published_at": "2026-11-30T09:00:00+00:00",
                "metrics": {"likes": 5, "comments": 0},
            },
        ),
    ]


def test_facebook_posts_take_views_else_impressions_and_summaries() -> None:
    payload = {
        "data": [
            {
                "id": "104000000000001_998877665544",
                "created_time": "2026-11-28T08:00:00+0000",
                "shares": {"count": 12},
                "reactions": {"data": [], "summary": {"total_count": 230}},
                "comments": {"data": [], "summary": {"order": "ranked", "total_count": 18}},
                "insights": {
                    "data": [
                        {
                            "name": "post_impressions",
                            "period": "lifetime",
                            "values": [{"value": 5400}],
                        },
                        {
                            "name": "post_impressions_unique",
                            "period": "lifetime",
                            "values": [{"value": 4100}],
                        },
                        {"name": "post_clicks", "period": "lifetime", "values": [{"value": 88}]},
                    ]
                },
            }
        ]
    }
    sent, _, rejects = ingest("graph_facebook_posts", json.dumps(payload))
    assert rejects == []
    assert sent == [
        (
            SNAPSHOTS,
            {
                "ts": POLLED,
                "platform": "facebook",
                "brand": "globex",
                "object_id": "104000000000001_998877665544",
                "published_at": "2026-11-28T08:00:00+00:00",
                "metrics": {
                    "impressions": 5400,
                    "reach": 4100,
                    "clicks": 88,
                    "likes": 230,
                    "comments": 18,
                    "shares": 12,
                },
            },
        )
    ]
    views = {"name": "post_media_view", "period": "lifetime", "values": [{"value": 6100}]}
    payload["data"][0]["insights"]["data"].append(views)  # type: ignore[index]
    sent, _, _ = ingest("graph_facebook_posts", json.dumps(payload))
    assert sent[0][1]["metrics"]["impressions"] == 6100


def test_page_insights_give_one_period_row_per_day_with_every_metric() -> None:
    # GET /v25.0/{page-id}/insights?metric=page_media_view,page_impressions_unique,
    # page_daily_follows_unique&period=day&since=2026-11-27&until=2026-11-29
    def metric(name: str, values: list[int]) -> dict[str, Any]:
        ends = ["2026-11-28T08:00:00+0000", "2026-11-29T08:00:00+0000"]
        return {
            "name": name,
            "period": "day",
            "values": [{"value": v, "end_time": e} for v, e in zip(values, ends, strict=True)],
            "title": name,
            "id": f"104000000000001/insights/{name}/day",
        }

    payload = {
        "data": [
            metric("page_media_view", [5000, 6200]),
            metric("page_impressions_unique", [3100, 3900]),
            # a metric answered in another order is matched by end_time, not position
            {
                **metric("page_daily_follows_unique", [9, 4]),
                "values": [
                    {"value": 4, "end_time": "2026-11-29T08:00:00+0000"},
                    {"value": 9, "end_time": "2026-11-28T08:00:00+0000"},
                ],
            },
        ]
    }
    sent, summary, rejects = ingest("graph_page_insights", json.dumps(payload))
    assert rejects == [] and summary.accepted == {"snapshot": 2}
    base = {"object_type": "account", "platform": "facebook", "brand": "globex"}
    assert [event for _, event in sent] == [
        {
            "ts": "2026-11-28T08:00:00+00:00",
            "published_at": "2026-11-27T08:00:00+00:00",
            "object_id": "104000000000001@2026-11-28T08:00:00+0000",
            **base,
            "metrics": {"impressions": 5000, "reach": 3100, "follows": 9},
        },
        {
            "ts": "2026-11-29T08:00:00+00:00",
            "published_at": "2026-11-28T08:00:00+00:00",
            "object_id": "104000000000001@2026-11-29T08:00:00+0000",
            **base,
            "metrics": {"impressions": 6200, "reach": 3900, "follows": 4},
        },
    ]


def test_x_posts_prefer_non_public_impressions_and_add_quotes_to_shares() -> None:
    # GET /2/users/:id/tweets?tweet.fields=created_at,public_metrics,non_public_metrics,
    # organic_metrics
    payload = {
        "data": [
            {
                "id": "1863150000000000001",
                "text": "Our winter blend is back",
                "created_at": "2026-11-30T08:15:00.000Z",
                "public_metrics": {
                    "retweet_count": 14,
                    "reply_count": 6,
                    "like_count": 120,
                    "quote_count": 3,
                    "bookmark_count": 9,
                    "impression_count": 4800,
                },
                "non_public_metrics": {
                    "impression_count": 4810,
                    "url_link_clicks": 52,
                    "user_profile_clicks": 11,
                },
                "organic_metrics": {"impression_count": 4700, "url_link_clicks": 50},
            },
            {
                # another account's post: public metrics only
                "id": "1863150000000000002",
                "created_at": "2026-11-30T09:00:00.000Z",
                "public_metrics": {"retweet_count": 0, "like_count": 2, "impression_count": 90},
            },
        ],
        "meta": {"result_count": 2, "newest_id": "1863150000000000002"},
    }
    sent, _, rejects = ingest("x_v2_posts", json.dumps(payload))
    assert rejects == []
    base = {"ts": POLLED, "platform": "x", "brand": "acme"}
    assert [event for _, event in sent] == [
        base
        | {
            "object_id": "1863150000000000001",
            "published_at": "2026-11-30T08:15:00+00:00",
            "metrics": {
                "impressions": 4810,
                "likes": 120,
                "comments": 6,
                "shares": 17,
                "saves": 9,
                "clicks": 52,
                "profile_visits": 11,
            },
        },
        base
        | {
            "object_id": "1863150000000000002",
            "published_at": "2026-11-30T09:00:00+00:00",
            "metrics": {"impressions": 90, "likes": 2, "shares": 0},
        },
    ]


def test_x_mentions_take_the_author_from_includes_users() -> None:
    # GET /2/tweets/search/recent?query=@acme&tweet.fields=created_at,author_id,lang,
    # conversation_id&expansions=author_id&user.fields=username,public_metrics
    payload = {
        "data": [
            {
                "id": "1863160000000000001",
                "text": "@acme my latte was cold again",
                "author_id": "2244994945",
                "created_at": "2026-11-30T11:40:00.000Z",
                "lang": "en",
                "conversation_id": "1863160000000000001",
            },
            {
                "id": "1863160000000000002",
                "text": "@acme love it",
                "author_id": "9999",  # not expanded: the id stands for the author
                "created_at": "2026-11-30T11:41:00.000Z",
            },
        ],
        "includes": {
            "users": [
                {
                    "id": "2244994945",
                    "username": "jo_drinks",
                    "public_metrics": {"followers_count": 1520, "following_count": 300},
                }
            ]
        },
    }
    sent, _, rejects = ingest("x_v2_mentions", json.dumps(payload))
    assert rejects == []
    assert sent == [
        (
            SETTINGS.pipeline.topics.mentions,
            {
                "id": "1863160000000000001",
                "ts": "2026-11-30T11:40:00+00:00",
                "platform": "x",
                "brand": "acme",
                "author": "jo_drinks",
                "author_followers": 1520,
                "text": "@acme my latte was cold again",
                "lang": "en",
                "conversation_id": "1863160000000000001",
                "url": "https://x.com/i/web/status/1863160000000000001",
            },
        ),
        (
            SETTINGS.pipeline.topics.mentions,
            {
                "id": "1863160000000000002",
                "ts": "2026-11-30T11:41:00+00:00",
                "platform": "x",
                "brand": "acme",
                "author": "9999",
                "text": "@acme love it",
                "url": "https://x.com/i/web/status/1863160000000000002",
            },
        ),
    ]


def test_youtube_statistics_strings_become_whole_numbers() -> None:
    payload = {
        "kind": "youtube#videoListResponse",
        "items": [
            {
                "kind": "youtube#video",
                "id": "dQw4w9WgXcQ",
                "snippet": {"publishedAt": "2026-11-25T17:00:00Z", "title": "Winter menu"},
                "statistics": {
                    "viewCount": "182044",
                    "likeCount": "5120",
                    "favoriteCount": "0",
                    "commentCount": "311",
                },
            }
        ],
        "pageInfo": {"totalResults": 1, "resultsPerPage": 1},
    }
    sent, _, rejects = ingest("youtube_videos", json.dumps(payload))
    assert rejects == []
    assert sent == [
        (
            SNAPSHOTS,
            {
                "ts": POLLED,
                "platform": "youtube",
                "brand": "globex",
                "object_id": "dQw4w9WgXcQ",
                "object_type": "video",
                "published_at": "2026-11-25T17:00:00+00:00",
                "metrics": {"video_views": 182044, "likes": 5120, "comments": 311},
            },
        )
    ]


def test_tiktok_videos_epoch_create_time() -> None:
    payload = {
        "data": {
            "videos": [
                {
                    "id": "7312345678901234567",
                    "create_time": 1795953600,  # epoch seconds
                    "share_url": "https://www.tiktok.com/@acme/video/7312345678901234567",
                    "view_count": 90210,
                    "like_count": 8800,
                    "comment_count": 240,
                    "share_count": 610,
                }
            ],
            "cursor": 1795953600000,
            "has_more": False,
        },
        "error": {"code": "ok", "message": "", "log_id": "20261130120000"},
    }
    sent, _, rejects = ingest("tiktok_videos", json.dumps(payload))
    assert rejects == []
    assert sent == [
        (
            SNAPSHOTS,
            {
                "ts": POLLED,
                "platform": "tiktok",
                "brand": "acme",
                "object_id": "7312345678901234567",
                "object_type": "video",
                "published_at": "2026-11-29T12:00:00+00:00",
                "metrics": {"video_views": 90210, "likes": 8800, "comments": 240, "shares": 610},
            },
        )
    ]


def test_linkedin_share_statistics_by_share_or_ugc_post() -> None:
    # GET /rest/organizationalEntityShareStatistics?q=organizationalEntity
    # &organizationalEntity=urn:li:organization:2414183&shares=List(urn:li:share:7263...)
    stats = {
        "uniqueImpressionsCount": 1900,
        "shareCount": 7,
        "engagement": 0.041,
        "clickCount": 64,
        "likeCount": 55,
        "impressionCount": 2600,
        "commentCount": 4,
    }
    payload = {
        "paging": {"count": 10, "start": 0, "links": []},
        "elements": [
            {
                "totalShareStatistics": stats,
                "share": "urn:li:share:7263000000000000001",
                "organizationalEntity": "urn:li:organization:2414183",
            },
            {
                "totalShareStatistics": stats | {"impressionCount": 10},
                "ugcPost": "urn:li:ugcPost:7263000000000000002",
                "organizationalEntity": "urn:li:organization:2414183",
            },
        ],
    }
    sent, _, rejects = ingest("linkedin_posts", json.dumps(payload))
    assert rejects == []
    metrics = {
        "impressions": 2600,
        "reach": 1900,
        "clicks": 64,
        "likes": 55,
        "comments": 4,
        "shares": 7,
    }
    base = {"ts": POLLED, "platform": "linkedin", "brand": "globex"}
    assert [event for _, event in sent] == [
        base | {"object_id": "urn:li:share:7263000000000000001", "metrics": metrics},
        base
        | {
            "object_id": "urn:li:ugcPost:7263000000000000002",
            "metrics": metrics | {"impressions": 10},
        },
    ]


def test_meta_ads_insights_rows_are_period_rows_per_ad_and_day() -> None:
    # GET /v25.0/act_{id}/insights?level=ad&time_increment=1&fields=ad_id,campaign_id,
    # impressions,reach,clicks,spend,actions,action_values
    row = {
        "ad_id": "120210000000000001",
        "campaign_id": "120200000000000009",
        "impressions": "361324",
        "reach": "201200",
        "clicks": "7346",
        "spend": "5339.5",
        "actions": [
            {"action_type": "landing_page_view", "value": "2100"},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "88"},
            {"action_type": "purchase", "value": "90"},
        ],
        "action_values": [{"action_type": "purchase", "value": "4120.75"}],
        "date_start": "2026-11-28",
        "date_stop": "2026-11-28",
    }
    pixel_only = {
        "ad_id": "120210000000000002",
        "impressions": "100",
        "spend": "12.30",
        "actions": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2"}],
        "date_start": "2026-11-28",
        "date_stop": "2026-11-28",
    }
    payload = {"data": [row, pixel_only], "paging": {"cursors": {"before": "MAZDZD"}}}
    sent, _, rejects = ingest("meta_ads_insights", json.dumps(payload))
    assert rejects == []
    base = {
        "ts": "2026-11-29T00:00:00+00:00",
        "published_at": "2026-11-28T00:00:00+00:00",
        "object_type": "ad",
        "platform": "facebook",
        "brand": "globex",
    }
    assert [event for _, event in sent] == [
        {
            **base,
            "object_id": "120210000000000001@2026-11-28",
            "campaign": "120200000000000009",
            "metrics": {
                "impressions": 361324,
                "reach": 201200,
                "clicks": 7346,
                "spend": 5339.5,
                "landing_visits": 2100,
                "conversions": 90,
                "revenue": 4120.75,
            },
        },
        {
            **base,
            "object_id": "120210000000000002@2026-11-28",
            "metrics": {"impressions": 100, "spend": 12.3, "conversions": 2},
        },
    ]
    # A corrected re-send is the same object at the same ts: the worker adds only the change.
    again, _, _ = ingest("meta_ads_insights", json.dumps({"data": [row | {"clicks": "7400"}]}))
    assert again[0][1]["object_id"] == sent[0][1]["object_id"]
    assert again[0][1]["ts"] == sent[0][1]["ts"]


def test_hourly_ads_csv_rows_are_period_rows_per_ad_and_hour() -> None:
    text = (
        "date,hour,platform,campaign,ad_id,impressions,clicks,spend,conversions\n"
        '2026-11-30,9,Instagram,winter-launch,ad-17,"12,400",310,41.20,7\n'
        "2026-11-30,10,TikTok,winter-launch,ad-18,900,12,3.5,0\n"
        "2026-11-30,10,Myspace,winter-launch,ad-19,900,12,3.5,0\n"
    )
    sent, summary, rejects = ingest("ads_hourly_csv", text, fmt="csv")
    base = {"object_type": "ad", "brand": "acme", "campaign": "winter-launch"}
    assert [event for _, event in sent] == [
        {
            "ts": "2026-11-30T10:00:00+00:00",
            "published_at": "2026-11-30T09:00:00+00:00",
            "object_id": "ad-17@2026-11-30T9",
            "platform": "instagram",
            **base,
            "metrics": {"impressions": 12400, "clicks": 310, "spend": 41.2, "conversions": 7},
        },
        {
            "ts": "2026-11-30T11:00:00+00:00",
            "published_at": "2026-11-30T10:00:00+00:00",
            "object_id": "ad-18@2026-11-30T10",
            "platform": "tiktok",
            **base,
            "metrics": {"impressions": 900, "clicks": 12, "spend": 3.5, "conversions": 0},
        },
    ]
    assert summary.rejected == {"invalid_fields": 1}
    assert rejects[0]["line"] == 4
    assert rejects[0]["detail"].startswith("platform (from 'platform'): 'Myspace' is not in")


def test_a_jsonl_file_of_responses_gives_each_lines_records() -> None:
    # A poller appending one response a line (JSONL) is read line by line, records per line.
    page = {"items": [{"id": "v1", "statistics": {"viewCount": "5"}}]}
    later = {"items": [{"id": "v1", "statistics": {"viewCount": "9"}}, {"id": "v2"}]}
    text = json.dumps(page) + "\n" + json.dumps(later) + "\n"
    sent, summary, rejects = ingest("youtube_videos", text, fmt="jsonl")
    assert [e["metrics"] for _, e in sent] == [{"video_views": 5}, {"video_views": 9}]
    # v2 has no statistics: a snapshot needs at least one metric, and the reject says so
    assert summary.rejected == {"invalid_fields": 1}
    assert (rejects[0]["line"], rejects[0]["index"]) == (2, 1)
    assert rejects[0]["detail"].startswith("metrics")
