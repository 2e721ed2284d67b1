"""What each poller source asks of its API, how it pages, and the cursor it keeps between
polls. Pure functions: requests are built and answers read here; sending them is the
poller's (ingest.poller).

- instagram_media: Graph v25.0 ``GET /{ig-user-id}/media`` with insights, mapped by
  graph_instagram_media; no cursor (the recent media, each poll).
- facebook_posts: Graph v25.0 ``GET /{page-id}/posts`` with summaries and insights, mapped by
  graph_facebook_posts; no cursor.
- page_insights: Graph v25.0 ``GET /{id}/insights?period=day&since&until``, mapped by
  graph_page_insights; the cursor is the day to read from.
- x_posts: X API v2 ``GET /2/users/:id/tweets``, mapped by x_v2_posts; no cursor.
- x_mentions: X API v2 ``GET /2/tweets/search/recent``, mapped by x_v2_mentions; the cursor is
  the since_id, and a next_token while a search is read over several polls.

Graph pages by ``paging.cursors.after`` (its ``paging.next`` URL is not followed: an answer
never chooses where the token is sent); X by ``meta.next_token``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeGuard

from ingest.poll_config import PollAccount, SourceKind
from ingest.rate_limits import Platform

DAY = 86400
# Graph answers at most 93 days of insights a request; a longer gap is read in steps.
INSIGHTS_SPAN = 90 * DAY
# Graph revises the last days' insights: each poll reads the two before the newest again
# (a period row counts only its difference, so a re-read adds nothing twice).
INSIGHTS_REREAD = 2 * DAY


@dataclass(frozen=True)
class SourceSpec:
    """A source kind: its platform, its default mapping and the endpoint its budget is of."""

    platform: Platform
    mapping: str
    endpoint: str


SOURCES: dict[SourceKind, SourceSpec] = {
    "instagram_media": SourceSpec("graph", "graph_instagram_media", "media"),
    "facebook_posts": SourceSpec("graph", "graph_facebook_posts", "posts"),
    "page_insights": SourceSpec("graph", "graph_page_insights", "insights"),
    "x_posts": SourceSpec("x", "x_v2_posts", "user_tweets"),
    "x_mentions": SourceSpec("x", "x_v2_mentions", "search"),
}

_MEDIA_FIELDS = (
    "id,timestamp,permalink,media_product_type,like_count,comments_count,"
    "insights.metric(views,reach,saved,shares,profile_visits,follows)"
)
_POST_FIELDS = (
    "id,created_time,shares,reactions.summary(total_count),comments.summary(total_count),"
    "insights.metric(post_media_view,post_impressions,post_impressions_unique,post_clicks)"
)
_PAGE_METRICS = "page_media_view,page_impressions_unique,page_views_total,page_daily_follows_unique"
_INSTAGRAM_METRICS = "reach,views"


@dataclass(frozen=True)
class Request:
    """One GET: the path under the API's base URL and its query."""

    path: str
    params: dict[str, str] = field(default_factory=dict)


def event_platform(account: PollAccount) -> str:
    """The platform the account's events are counted on."""
    if account.source == "instagram_media":
        return "instagram"
    if account.source == "page_insights":
        return account.platform
    return "facebook" if account.source == "facebook_posts" else "x"


def first_request(
    account: PollAccount, cursor: Mapping[str, Any], now: float, version: str
) -> Request:
    """The first request of a poll, from where the cursor says the last one stopped."""
    source = account.source
    if source == "instagram_media":
        return Request(
            f"/{version}/{account.account_id}/media",
            {"fields": _MEDIA_FIELDS, "limit": str(account.page_size)},
        )
    if source == "facebook_posts":
        return Request(
            f"/{version}/{account.account_id}/posts",
            {"fields": _POST_FIELDS, "limit": str(account.page_size)},
        )
    if source == "page_insights":
        since = float(cursor.get("since") or now - account.first_days * DAY)
        until = min(now, since + INSIGHTS_SPAN)
        metrics = _INSTAGRAM_METRICS if account.platform == "instagram" else _PAGE_METRICS
        return Request(
            f"/{version}/{account.account_id}/insights",
            {
                "metric": metrics,
                "period": "day",
                "since": str(int(since)),
                "until": str(int(until)),
            },
        )
    if source == "x_posts":
        fields = "created_at,public_metrics"
        if account.own_metrics:
            fields += ",non_public_metrics,organic_metrics"
        return Request(
            f"/2/users/{account.account_id}/tweets",
            {"tweet.fields": fields, "max_results": str(account.page_size)},
        )
    params = {
        "query": account.query,
        "max_results": str(account.page_size),
        "tweet.fields": "created_at,author_id,lang,conversation_id",
        "expansions": "author_id",
        "user.fields": "username,public_metrics",
    }
    if cursor.get("since_id"):
        params["since_id"] = str(cursor["since_id"])
    if cursor.get("next_token"):
        params["next_token"] = str(cursor["next_token"])
    return Request("/2/tweets/search/recent", params)


def next_request(account: PollAccount, request: Request, body: Mapping[str, Any]) -> Request | None:
    """The next page's request after ``body``, or None when it was the last."""
    if account.source == "page_insights":
        return None  # one span a request; a longer gap goes on at the next poll
    if SOURCES[account.source].platform == "graph":
        paging = body.get("paging")
        if not isinstance(paging, Mapping) or not paging.get("next"):
            return None
        cursors = paging.get("cursors")
        after = cursors.get("after") if isinstance(cursors, Mapping) else None
        if not _token(after):
            return None
        return Request(request.path, request.params | {"after": str(after)})
    meta = body.get("meta")
    token = meta.get("next_token") if isinstance(meta, Mapping) else None
    if not _token(token):
        return None
    name = "next_token" if account.source == "x_mentions" else "pagination_token"
    return Request(request.path, request.params | {name: str(token)})


def _token(value: Any) -> bool:
    """A pagination cursor as the platforms send them: printable ASCII, of a sane length."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 1024
        and value.isascii()
        and value.isprintable()
    )


def _post_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20


def _newest(bodies: Sequence[Mapping[str, Any]]) -> str | None:
    ids = []
    for body in bodies:
        meta = body.get("meta")
        newest = meta.get("newest_id") if isinstance(meta, Mapping) else None
        if _post_id(newest):
            ids.append(newest)
    return max(ids, key=int, default=None)


def _insights_until(bodies: Sequence[Mapping[str, Any]]) -> float | None:
    ends: list[float] = []
    for body in bodies:
        entries = body.get("data")
        for entry in entries if isinstance(entries, list) else []:
            values = entry.get("values") if isinstance(entry, Mapping) else None
            for value in values if isinstance(values, list) else []:
                end = value.get("end_time") if isinstance(value, Mapping) else None
                try:
                    ends.append(datetime.strptime(str(end), "%Y-%m-%dT%H:%M:%S%z").timestamp())
                except ValueError:
                    continue  # the mapping rejects that record and says why
    return max(ends, default=None)


def next_cursor(
    account: PollAccount,
    cursor: Mapping[str, Any],
    request: Request,
    bodies: Sequence[Mapping[str, Any]],
    pending: Request | None,
    now: float,
) -> dict[str, Any]:
    """The cursor after a poll that read ``bodies`` (in order) and stopped before ``pending``
    (None: it read to the end). A search stopped midway keeps its next_token and the newest
    id seen, so the next poll reads on and then starts after everything this one saw."""
    if account.source == "x_mentions":
        newest = max(
            (i for i in (cursor.get("newest"), _newest(bodies)) if _post_id(i)),
            key=int,
            default=None,
        )
        if pending is not None:
            return {
                "since_id": cursor.get("since_id"),
                "next_token": pending.params.get("next_token"),
                "newest": newest,
            }
        return {"since_id": newest or cursor.get("since_id")}
    if account.source == "page_insights":
        until = float(request.params["until"])
        newest_day = _insights_until(bodies)
        if newest_day is not None:
            newest_day = min(newest_day, now)  # a day "from the future" moves nothing past now
        if until < now - DAY:  # a long gap read in steps: on from where this span ended
            return {"since": until}
        start = (newest_day if newest_day is not None else until) - INSIGHTS_REREAD
        return {"since": max(start, float(request.params["since"]))}
    return {}
