"""The pollers' pure rules: rate-limit headers, error classes, backoff, and each source's
requests, pages and cursor."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ingest.poll_config import PollAccount
from ingest.poll_sources import DAY, Request, first_request, next_cursor, next_request
from ingest.rate_limits import Budget, backoff, graph_budgets, retry_after, verdict, x_budget

NOW = 1_796_000_000.0


def account(source: str, **more: Any) -> PollAccount:
    base: dict[str, Any] = {"source": source, "brand": "acme", "token_env": "T"}
    if source == "x_mentions":
        base["query"] = "@acme"
    else:
        base["account_id"] = "123"
    return PollAccount.model_validate(base | more)


def test_x_rate_limit_headers_give_the_share_used_and_a_spent_budget_rests_to_its_reset() -> None:
    headers = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "45",
        "x-rate-limit-reset": "1796000900",
    }
    assert x_budget(headers, "x:T:search") == Budget("x:T:search", 0.9, None)
    spent = headers | {"X-Rate-Limit-Remaining": "0"}
    del spent["x-rate-limit-remaining"]
    assert x_budget(spent, "x:T:search") == Budget("x:T:search", 1.0, 1796000900.0)
    assert x_budget({"x-rate-limit-limit": "abc"}, "n") is None
    assert x_budget({}, "n") is None


def test_graph_usage_headers_rest_a_budget_used_to_the_threshold_until_regained() -> None:
    headers = {
        "X-App-Usage": '{"call_count": 95, "total_cputime": 10, "total_time": 12}',
        "X-Business-Use-Case-Usage": (
            '{"104": [{"type": "pages", "call_count": 40, "total_cputime": 91, '
            '"total_time": 5, "estimated_time_to_regain_access": 7}], '
            '"105": [{"type": "instagram", "call_count": 10, "total_cputime": 1, '
            '"total_time": 1, "estimated_time_to_regain_access": 0}]}'
        ),
    }
    assert graph_budgets(headers, "main", NOW, 0.9, 300) == [
        Budget("graph-app:main", 0.95, NOW + 300),  # no regain time given: the pause
        Budget("graph-business:104:pages", 0.91, NOW + 420),  # 7 minutes
        Budget("graph-business:105:instagram", 0.10, None),
    ]
    assert graph_budgets({"X-App-Usage": "not json"}, "main", NOW, 0.9, 300) == []
    assert graph_budgets({"X-Business-Use-Case-Usage": '{"1": "x"}'}, "m", NOW, 0.9, 300) == []


def test_retry_after_in_seconds_or_an_http_date_and_nothing_for_junk() -> None:
    assert retry_after({"Retry-After": "120"}, NOW) == NOW + 120
    assert retry_after({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, NOW) == 1792567680.0
    assert retry_after({"Retry-After": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None


@pytest.mark.parametrize(
    ("platform", "status", "body", "outcome", "reason"),
    [
        ("graph", 200, {"data": []}, "ok", ""),
        (
            "graph",
            400,
            {"error": {"code": 190, "error_subcode": 463, "message": "Session has expired"}},
            "auth_failed",
            "code 190, subcode 463: Session has expired",
        ),
        ("graph", 403, {"error": {"code": 4, "message": "limit"}}, "rate_limited", "code 4: limit"),
        ("graph", 403, {"error": {"code": 80002, "message": "m"}}, "rate_limited", "code 80002: m"),
        ("graph", 500, {"error": {"code": 2, "message": "x"}}, "server_error", "HTTP 500, code 2"),
        ("graph", 502, None, "server_error", "HTTP 502"),
        (
            "graph",
            403,
            {"error": {"code": 10, "message": "no"}},
            "refused",
            "code 10: no (the token lacks a permission)",
        ),
        (
            "graph",
            400,
            {"error": {"code": 100, "message": "bad"}},
            "refused",
            "HTTP 400, code 100: bad",
        ),
        ("x", 200, {"data": []}, "ok", ""),
        (
            "x",
            401,
            {"title": "Unauthorized", "detail": "Unauthorized"},
            "auth_failed",
            "HTTP 401: Unauthorized",
        ),
        ("x", 429, {"title": "Too Many Requests"}, "rate_limited", "HTTP 429: Too Many Requests"),
        ("x", 503, "<html>", "server_error", "HTTP 503"),
        ("x", 400, {"detail": "bad query"}, "refused", "HTTP 400: bad query"),
    ],
)
def test_answers_are_classed_by_what_they_ask_of_the_poller(
    platform: Any, status: int, body: Any, outcome: str, reason: str
) -> None:
    found = verdict(platform, status, body)
    assert (found.outcome, found.reason) == (outcome, reason)


def test_backoff_doubles_to_its_cap_with_jitter_between_half_and_whole() -> None:
    assert [backoff(n, 30, 3600, draw=0.0) for n in (1, 2, 3, 8, 20)] == [15, 30, 60, 1800, 1800]
    assert [backoff(n, 30, 3600, draw=0.999999) for n in (1, 2)] == pytest.approx(
        [30, 60], abs=1e-3
    )
    assert all(15 <= backoff(1, 30, 3600) <= 30 for _ in range(200))


def test_graph_pages_by_its_after_cursor_only_while_it_says_there_is_a_next_page() -> None:
    media = account("instagram_media", page_size=10)
    first = first_request(media, {}, NOW, "v25.0")
    assert first.path == "/v25.0/123/media" and first.params["limit"] == "10"
    body = {"data": [], "paging": {"cursors": {"after": "QVFI"}, "next": "https://evil.example/x"}}
    following = next_request(media, first, body)
    assert following == Request("/v25.0/123/media", first.params | {"after": "QVFI"})
    assert next_request(media, first, {"paging": {"cursors": {"after": "QVFI"}}}) is None
    assert next_request(media, first, {"paging": "x"}) is None


def test_a_search_keeps_since_id_and_a_next_token_while_it_is_read_in_several_polls() -> None:
    search = account("x_mentions")
    start = first_request(search, {}, NOW, "v25.0")
    assert "since_id" not in start.params and "next_token" not in start.params
    page1 = {"meta": {"newest_id": "900", "oldest_id": "800", "next_token": "t1"}}
    pending = next_request(search, start, page1)
    assert pending is not None and pending.params["next_token"] == "t1"
    # Stopped at max_pages: the next poll goes on with t1, and remembers the newest seen.
    cursor = next_cursor(search, {}, start, [page1], pending, NOW)
    assert cursor == {"since_id": None, "next_token": "t1", "newest": "900"}
    going_on = first_request(search, cursor, NOW, "v25.0")
    assert going_on.params["next_token"] == "t1" and "since_id" not in going_on.params
    page2 = {"meta": {"newest_id": "790", "oldest_id": "700"}}
    assert next_request(search, going_on, page2) is None
    cursor = next_cursor(search, cursor, going_on, [page2], None, NOW)
    assert cursor == {"since_id": "900"}  # everything up to 900 read: start after it
    after = first_request(search, cursor, NOW, "v25.0")
    assert after.params["since_id"] == "900" and "next_token" not in after.params
    # A poll that found nothing new keeps its since_id.
    assert next_cursor(search, cursor, after, [{"meta": {"result_count": 0}}], None, NOW) == cursor


def test_insights_read_from_the_cursor_and_step_through_a_long_gap() -> None:
    insights = account("page_insights", first_days=7)
    first = first_request(insights, {}, NOW, "v25.0")
    assert (float(first.params["since"]), float(first.params["until"])) == (NOW - 7 * DAY, NOW)
    body = {
        "data": [
            {
                "name": "page_media_view",
                "values": [
                    {"value": 1, "end_time": "2026-11-28T08:00:00+0000"},
                    {"value": 2, "end_time": "2026-11-29T08:00:00+0000"},
                ],
            }
        ]
    }
    newest = 1795939200.0  # 2026-11-29T08:00:00Z
    assert next_cursor(insights, {}, first, [body], None, NOW) == {"since": newest - 2 * DAY}
    # A day from the future (a platform's or a proxy's mistake) moves the cursor no further
    # than now: the next poll still asks for the days up to now.
    ahead = {
        "data": [{"name": "x", "values": [{"value": 1, "end_time": "2099-01-01T08:00:00+0000"}]}]
    }
    assert next_cursor(insights, {}, first, [ahead], None, NOW) == {"since": NOW - 2 * DAY}
    # 200 days away: read 90 days a request, on from where each ended.
    gap = first_request(insights, {"since": NOW - 200 * DAY}, NOW, "v25.0")
    assert float(gap.params["until"]) == NOW - 110 * DAY
    assert next_cursor(insights, {}, gap, [body], None, NOW) == {"since": NOW - 110 * DAY}


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"source": "x_mentions", "brand": "acme", "token_env": "T"}, "x_mentions needs query"),
        ({"source": "x_posts", "brand": "acme", "token_env": "T"}, "x_posts needs account_id"),
        (
            {"source": "x_posts", "brand": "acme", "account_id": "1", "token_env": "lower"},
            "token_env",
        ),
        ({"source": "tiktok", "brand": "acme", "account_id": "1", "token_env": "T"}, "source"),
        (
            {
                "source": "x_posts",
                "brand": "a",
                "account_id": "1",
                "token_env": "T",
                "page_size": 5,
            },
            "page_size",
        ),
    ],
)
def test_a_bad_account_is_refused_naming_what_is_wrong(given: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PollAccount.model_validate(given)
