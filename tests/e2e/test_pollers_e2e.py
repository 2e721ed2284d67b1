"""The pollers on the real stack: the real HTTP client (httpx) against the project's platform
API stub, events into the real Kafka, cursors, backoff and budgets in the real Redis."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from ingest.config import load_ingest
from ingest.event_producer import EventProducer, kafka_producer
from ingest.poller import Poller, PollMetrics
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import RedisKeys
from socialpulse.core.topics import ensure_topics
from socialpulse.devtools.platform_api_stub import PlatformStub, make_server
from tests.conftest import ROOT, free_port, run_cli, write_config

IG, PAGE, X_USER = "17841400000000002", "104000000000001", "1500000000000000001"


class Clock:
    """The poller's clock, moved by the test: due times and backoffs are then exact. It starts
    at the real time: the stub makes its posts relative to that (a post published after the
    poll's time would be refused)."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[tuple[PlatformStub, str]]:
    """The project's platform API stub, served on a port of this test's own."""
    stub = PlatformStub()
    server = make_server("127.0.0.1", 0, stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def configure(folder: Path, url: str, accounts: dict[str, Any], **pollers: Any) -> Settings:
    """A config folder of the test's own with these poller accounts against the stub."""
    run = uuid.uuid4().hex[:10]
    write_config(folder, run)
    shipped = yaml.safe_load((ROOT / "config/ingest.yaml").read_text())
    shipped["pollers"] = {
        "stub_url": url,
        "graph_url": url,
        "x_url": url,
        "metrics_port": free_port(),
        "backoff_base": "30s",
        "backoff_max": "1h",
        **pollers,
        "accounts": accounts,
    }
    (folder / "ingest.yaml").write_text(yaml.safe_dump(shipped))
    return load_settings(folder)


def make_poller(
    settings: Settings, clock: Clock, environ: dict[str, str] | None = None
) -> tuple[Poller, EventProducer]:
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    producer = EventProducer(kafka_producer(settings.pipeline.kafka, "test-poll", 0), envelope=100)
    poller = Poller(
        settings,
        load_ingest(settings.config_dir, settings.brands),
        httpx.Client(),
        producer,
        redis.Redis.from_url(settings.pipeline.redis.url),
        RedisKeys(settings.pipeline.redis.key_prefix),
        PollMetrics(CollectorRegistry()),
        environ=environ or {},
        clock=clock,
    )
    return poller, producer


def read_topic(settings: Settings, topic: str) -> list[tuple[dict[str, bytes], Any]]:
    """Every message of a topic: (headers, decoded JSON value), in order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.pipeline.kafka.bootstrap_servers)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    found = []
    while any(consumer.position(p) < ends[p] for p in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            found += [(dict(r.headers), json.loads(r.value)) for r in records]
    consumer.close()
    return found


def events(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """The events produced to one topic, envelopes opened."""
    topic = getattr(settings.pipeline.topics, kind)
    out: list[dict[str, Any]] = []
    for _, value in read_topic(settings, topic):
        out += value if isinstance(value, list) else [value]
    return out


def media(mid: str, likes: int, views: int, comments: int = 0) -> dict[str, Any]:
    """An Instagram media record as Graph v25.0 answers /{ig-user-id}/media with insights."""
    return {
        "id": mid,
        "timestamp": "2026-12-07T08:00:00+0000",
        "media_product_type": "REELS",
        "like_count": likes,
        "comments_count": comments,
        "insights": {
            "data": [
                {
                    "name": "views",
                    "period": "lifetime",
                    "values": [{"value": views}],
                    "id": f"{mid}/insights/views/lifetime",
                }
            ]
        },
    }


def post(pid: int, author: str = "901") -> dict[str, Any]:
    """A post as X API v2 recent search answers it."""
    return {
        "id": str(pid),
        "created_at": "2026-12-07T09:00:00.000Z",
        "text": f"post {pid} about acme",
        "author_id": author,
        "lang": "en",
        "conversation_id": str(pid),
    }


def acct(source: str, brand: str = "acme", **more: Any) -> dict[str, Any]:
    """A poller account of the test's config."""
    return {"source": source, "brand": brand, **more}


USERS = [{"id": "901", "username": "jo", "public_metrics": {"followers_count": 1200}}]


def test_a_poll_produces_what_the_api_answers_and_the_next_starts_after_it(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "ig": acct("instagram_media", account_id=IG, token_env="SP_TEST_IG", every="5m"),
            "search": acct("x_mentions", query="@acme", token_env="SP_TEST_X", every="1m"),
        },
    )
    stub.data.update(
        {
            f"graph:{IG}/media": [media("ig-1", 10, 300, 2), media("ig-2", 4, 90)],
            "x:search": [post(1003), post(1001), post(1002)],
            "x:users": USERS,
        }
    )
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    results = poller.poll_due()
    assert [(r.account, r.outcome, r.requests, r.accepted, r.rejected) for r in results] == [
        ("ig", "ok", 1, 2, 0),
        ("search", "ok", 1, 3, 0),
    ]
    snapshots = {e["object_id"]: e for e in events(settings, "snapshots")}
    assert {k: (e["brand"], e["platform"], e["metrics"]) for k, e in snapshots.items()} == {
        "ig-1": ("acme", "instagram", {"likes": 10, "comments": 2, "impressions": 300}),
        "ig-2": ("acme", "instagram", {"likes": 4, "comments": 0, "impressions": 90}),
    }
    mentions = events(settings, "mentions")
    assert sorted((m["id"], m["author"], m["author_followers"]) for m in mentions) == [
        ("1001", "jo", 1200),
        ("1002", "jo", 1200),
        ("1003", "jo", 1200),
    ]
    state = poller.state("search")
    assert (state["cursor"], state["due"], state["outcome"]) == (
        {"since_id": "1003"},
        clock.now + 60,
        "ok",
    )
    assert poller.state("ig")["due"] == clock.now + 300
    # Nothing is due a minute early; at the minute only the search is, and it reads after 1003.
    clock.now += 59
    assert poller.poll_due() == []
    stub.data["x:search"] = [post(1005), post(1004), post(1003), post(1001)]
    clock.now += 1
    [again] = poller.poll_due()
    assert (again.account, again.accepted) == ("search", 2)
    assert stub.requests[-1]["query"]["since_id"] == "1003"
    assert sorted(m["id"] for m in events(settings, "mentions")) == [
        "1001",
        "1002",
        "1003",
        "1004",
        "1005",
    ]
    assert [r["token"] for r in stub.requests] == [True, True, True]  # the stub's token, sent
    producer.close(10)


def test_a_search_longer_than_a_poll_is_read_on_at_the_next_without_gap_or_repeat(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "search": acct(
                "x_mentions", query="@acme", token_env="SP_TEST_X", page_size=10, max_pages=2
            ),
        },
    )
    stub.data.update({"x:search": [post(2000 + k) for k in range(25)], "x:users": USERS})
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    assert [(r.requests, r.accepted) for r in poller.poll_due()] == [(2, 20)]
    assert poller.state("search")["cursor"]["newest"] == "2024"
    # Newer posts come in while the search is half read: the rest first, then the newer ones.
    stub.data["x:search"] = [post(2100 + k) for k in range(3)] + stub.data["x:search"]
    assert [(r.requests, r.accepted) for r in [poller.poll("search")]] == [(1, 5)]
    assert poller.state("search")["cursor"] == {"since_id": "2024"}
    assert [(r.requests, r.accepted) for r in [poller.poll("search")]] == [(1, 3)]
    ids = [m["id"] for m in events(settings, "mentions")]
    assert sorted(ids) == sorted([str(2000 + k) for k in range(25)] + ["2100", "2101", "2102"])
    assert len(ids) == 28  # none twice
    producer.close(10)


def test_rate_limits_hold_back_every_account_spending_the_budget_until_it_resets(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "posts": acct("x_posts", account_id=X_USER, token_env="SP_TEST_X"),
            "posts-2": acct("x_posts", account_id="42", token_env="SP_TEST_X"),
            "ig": acct("instagram_media", account_id=IG, token_env="SP_TEST_IG"),
        },
    )
    stub.limits.update(x=1)
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    results = {r.account: r for r in poller.poll_due()}
    assert {k: (r.outcome, r.requests) for k, r in results.items()} == {
        "ig": ("ok", 1),
        "posts": ("ok", 1),
        # The answer to "posts" said its token's budget for the endpoint is spent: the other
        # account spending it waits for the reset, without a request (no 429 incurred).
        "posts-2": ("waiting", 0),
    }
    [(window_start, used)] = stub.x_used.values()
    reset = float(int(window_start + 900))  # x-rate-limit-reset: whole unix seconds
    assert used == 1
    assert results["posts-2"].next_due == reset  # the platform's reset
    assert poller.state("posts-2")["due"] == reset
    asked = len(stub.requests)
    held = poller.poll("posts")
    assert (held.outcome, held.requests, held.next_due) == ("waiting", 0, reset)
    assert len(stub.requests) == asked == 2
    # Retry-After wins where the platform sends it.
    stub.faults.append((f"/v25.0/{IG}/media", [{"status": 429, "retry_after": 120}]))
    limited = poller.poll("ig")
    assert (limited.outcome, limited.next_due) == ("rate_limited", clock.now + 120)
    # A Graph budget used to 90% rests the app's accounts for the regain time it states.
    stub.limits.update(graph=2)
    rested = poller.poll("ig")  # the 2nd call of the hour: 100% used, no regain time yet
    assert rested.outcome == "ok"
    budgets = redis.Redis.from_url(settings.pipeline.redis.url).hgetall(
        RedisKeys(settings.pipeline.redis.key_prefix).poll_budgets()
    )
    assert float(budgets[b"graph-app:default"]) == clock.now + 300
    assert poller.poll("ig").outcome == "waiting"
    producer.close(10)


def test_an_expired_token_names_the_account_the_variable_and_the_fix(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "page": acct(
                "facebook_posts", brand="globex", account_id=PAGE, token_env="SP_TEST_PAGE"
            ),
        },
        retry_refused="1h",
    )
    stub.faults.append((f"/v25.0/{PAGE}/posts", [{"graph_error": 190}]))
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock, {"SP_TEST_PAGE": "EAAB-real-looking-token"})
    with caplog.at_level(logging.ERROR, "socialpulse.poll"):
        [result] = poller.poll_due()
    assert result.outcome == "auth_failed"
    assert result.reason.startswith("code 190, subcode 463: Error validating access token")
    assert result.next_due == clock.now + 3600
    [message] = [r.getMessage() for r in caplog.records if r.name == "socialpulse.poll"]
    assert message.startswith(
        "poll page: the platform refused the token in SP_TEST_PAGE (code 190, subcode 463: "
    )
    assert "make a new token for the account (docs/ingest.md, Pollers), set SP_TEST_PAGE" in message
    assert "EAAB-real-looking-token" not in message
    assert poller.metrics.up.labels("page")._value.get() == 0
    producer.close(10)


def test_an_outage_backs_off_doubling_and_the_account_recovers(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "posts": acct("x_posts", account_id=X_USER, token_env="SP_TEST_X", every="5m"),
        },
    )
    stub.faults.append((f"/2/users/{X_USER}", [{"status": 503}] * 3))
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    waits = []
    for failures in (1, 2, 3):
        result = poller.poll("posts")
        assert (result.outcome, result.reason) == ("server_error", "HTTP 503")
        assert poller.state("posts")["failures"] == failures
        waits.append(result.next_due - clock.now)
    for n, wait in enumerate(waits):  # 30 s doubling, jittered between half and whole
        assert 30 * 2**n / 2 <= wait <= 30 * 2**n
    recovered = poller.poll("posts")
    assert (recovered.outcome, recovered.accepted, recovered.next_due) == ("ok", 3, clock.now + 300)
    assert poller.state("posts")["failures"] == 0
    # The platform unreachable altogether: a failure like any other, no crash.
    stub_less = configure(
        tmp_path / "gone",
        f"http://127.0.0.1:{free_port()}",
        {"posts": acct("x_posts", account_id=X_USER, token_env="SP_TEST_X")},
    )
    gone, other = make_poller(stub_less, clock)
    result = gone.poll("posts")
    assert result.outcome == "server_error" and result.reason.startswith("ConnectError")
    producer.close(10)
    other.close(10)


def test_a_record_that_is_no_event_is_dead_lettered_and_the_others_count(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "ig": acct("instagram_media", account_id=IG, token_env="SP_TEST_IG"),
        },
    )
    broken = media("ig-bad", 1, 1) | {"like_count": "lots"}
    stub.data[f"graph:{IG}/media"] = [media("ig-1", 5, 50), broken, media("ig-2", 6, 60)]
    poller, producer = make_poller(settings, Clock(time.time()))
    [result] = poller.poll_due()
    assert (result.outcome, result.accepted, result.rejected) == ("ok", 2, 1)
    assert sorted(e["object_id"] for e in events(settings, "snapshots")) == ["ig-1", "ig-2"]
    [(headers, record)] = read_topic(settings, settings.pipeline.topics.dead_letter)
    assert record == broken
    assert (headers["reason"], headers["source_topic"]) == (b"invalid_fields", b"poll:ig")
    assert headers["detail"].decode().startswith("metrics.likes (from 'like_count'): ")
    producer.close(10)


def test_the_poll_command_keeps_its_state_between_runs_and_fails_loudly(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "ig": acct("instagram_media", account_id=IG, token_env="SP_TEST_IG"),
            "page": acct(
                "facebook_posts", brand="globex", account_id=PAGE, token_env="SP_TEST_PAGE"
            ),
        },
    )
    stub.faults.append((f"/v25.0/{PAGE}/posts", [{"graph_error": 190}]))
    first = run_cli(settings, "poll", "--once")
    assert first.returncode == 3, first.stderr
    ig_line, page_line = first.stdout.splitlines()
    assert ig_line == "poll ig: ok, 1 requests, 3 events, 0 dead-lettered"
    assert page_line.startswith("poll page: auth_failed (code 190, subcode 463: ")
    assert page_line.endswith("), 1 requests, 0 events, 0 dead-lettered")
    assert "make a new token for the account" in first.stderr
    assert "SP_TEST_IG is not set: polling the local API stub" in first.stderr
    again = run_cli(settings, "poll", "--once")  # a new process: nothing is due yet
    assert (again.returncode, again.stdout) == (0, "poll: no account is due\n")
    assert len(stub.requests) == 2
    unknown = run_cli(settings, "poll", "--once", "--account", "nope")
    assert unknown.returncode != 0
    assert "pollers.accounts: no account 'nope' (accounts: ig, page)" in unknown.stderr


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        (
            {"source": "x_mentions", "brand": "acme", "token_env": "T"},
            "pollers.accounts.a: x_mentions needs query",
        ),
        (
            {"source": "x_posts", "brand": "nobody", "account_id": "1", "token_env": "T"},
            "pollers.accounts.a.brand: 'nobody' is not in brands.yaml",
        ),
        (
            acct("x_posts", account_id="1", token_env="T", mapping="nope"),
            "pollers.accounts.a.mapping: 'nope' is not a mapping of this file",
        ),
    ],
)
def test_a_bad_poller_config_is_refused_at_start_naming_file_key_and_problem(
    stack: Settings, tmp_path: Path, account: dict[str, Any], problem: str
) -> None:
    folder = tmp_path / "config"
    write_config(folder, uuid.uuid4().hex[:10])
    shipped = yaml.safe_load((ROOT / "config/ingest.yaml").read_text())
    shipped["pollers"] = {"accounts": {"a": account}}
    (folder / "ingest.yaml").write_text(yaml.safe_dump(shipped))
    done = run_cli(load_settings(folder), "poll", "--once")
    assert done.returncode != 0
    assert "ingest.yaml" in done.stderr and problem in done.stderr


def test_the_poller_service_serves_its_metrics_and_stops_cleanly_on_sigterm(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from socialpulse.core.paths import state_dir
    from tests.e2e.helpers.reading import value, wait_until

    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "search": acct("x_mentions", query="@acme", token_env="SP_TEST_X", every="1m"),
        },
    )
    stub.data.update({"x:search": [post(3001), post(3002)], "x:users": USERS})
    port = load_ingest(settings.config_dir, settings.brands).pollers.metrics_port
    process = subprocess.Popen(
        [sys.executable, "-m", "socialpulse.cli", "--config", str(settings.config_dir), "poll"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    target = state_dir() / "prometheus" / "poller-targets" / f"poller-{port}.json"
    try:
        wait_until(
            lambda: (
                _answers(metrics_url)
                # Set when a poll ends (its events are counted as they are produced).
                and value(metrics_url, "socialpulse_poll_up", account="search") == 1
            ),
            60,
            "the poller's first poll to end, on its /metrics",
        )
        accepted = {"account": "search", "outcome": "accepted"}
        assert value(metrics_url, "socialpulse_poll_events_total", **accepted) == 2
        assert (
            value(metrics_url, "socialpulse_poll_requests_total", account="search", outcome="ok")
            == 1
        )
        assert json.loads(target.read_text()) == [{"targets": [f"127.0.0.1:{port}"], "labels": {}}]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert not target.exists()
    assert sorted(m["id"] for m in events(settings, "mentions")) == ["3001", "3002"]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).read()
    except OSError:
        return False
    return True


def test_hostile_or_broken_answers_cost_only_their_account_a_backoff(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.poller

    stub, url = api
    settings = configure(
        tmp_path,
        url,
        {
            "ig": acct("instagram_media", account_id=IG, token_env="SP_TEST_IG"),
            "posts": acct("x_posts", account_id=X_USER, token_env="SP_TEST_X"),
            "search": acct("x_mentions", query="@acme", token_env="SP_TEST_X"),
        },
    )
    stub.data.update({"x:search": [post(4001)], "x:users": USERS})
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    assert [r.outcome for r in poller.poll_due()] == ["ok", "ok", "ok"]
    ig_path, posts_path = f"/v25.0/{IG}/media", f"/2/users/{X_USER}/tweets"
    answers: list[tuple[str, dict[str, Any], str, str]] = [
        # (account, the answer, outcome, the reason's start)
        (
            "ig",
            {"raw": json.dumps({"data": [], "paging": {"cursors": None, "next": "u"}})},
            "ok",
            "",
        ),
        (
            "ig",
            {"raw": "[" * 50_000},
            "server_error",
            "HTTP 200 with a body that is not a JSON object",
        ),
        (
            "posts",
            {
                "raw": "{}",
                "status": 429,
                "headers": {
                    "Retry-After": "\u00b2",
                    "x-rate-limit-limit": "1",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": "9" * 400,
                },
            },
            "rate_limited",
            "HTTP 429",
        ),
        (
            "search",
            {"raw": json.dumps({"meta": {"newest_id": "1\u00b2", "result_count": 0}})},
            "ok",
            "",
        ),
        (
            "ig",
            {
                "raw": json.dumps({"data": []}),
                "headers": {
                    "X-Business-Use-Case-Usage": '{"9": [{"type": "pages", "call_count": 100, '
                    '"estimated_time_to_regain_access": 1e400}]}'
                },
            },
            "ok",
            "",
        ),
        (
            "ig",
            {"raw": json.dumps({"data": [], "pad": "x" * 150_000})},
            "server_error",
            "an answer over 100000 bytes",
        ),
    ]
    monkeypatch.setattr(ingest.poller, "MAX_ANSWER_BYTES", 100_000)
    for account, answer, outcome, reason in answers:
        path = ig_path if account == "ig" else posts_path if account == "posts" else "/2/tweets"
        stub.faults.append((path, [answer]))
        clock.now += 3600
        result = poller.poll(account)
        assert (result.outcome, result.reason[: len(reason)]) == (outcome, reason), answer
        assert result.next_due <= clock.now + 86400 + 1  # no rest longer than a day
    assert poller.state("search")["cursor"] == {"since_id": "4001"}  # "1²" moved nothing
    # The other accounts were polled all along, and the round goes on.
    clock.now += 90000
    assert [r.outcome for r in poller.poll_due()] == ["ok", "ok", "ok"]
    producer.close(10)


def test_a_search_cursor_the_api_refuses_starts_afresh_and_no_token_can_mean_no_poll(
    stack: Settings, api: tuple[PlatformStub, str], tmp_path: Path
) -> None:
    stub, url = api
    accounts = {"search": acct("x_mentions", query="@acme", token_env="SP_TEST_X")}
    settings = configure(tmp_path, url, accounts)
    stub.data.update({"x:search": [post(5001)], "x:users": USERS})
    clock = Clock(time.time())
    poller, producer = make_poller(settings, clock)
    poller.poll("search")
    assert poller.state("search")["cursor"] == {"since_id": "5001"}
    # X refuses a since_id older than its 7 days of recent search: start afresh, soon.
    stub.faults.append(
        (
            "/2/tweets",
            [
                {
                    "raw": json.dumps(
                        {
                            "title": "Invalid Request",
                            "detail": "since_id must be newer",
                            "status": 400,
                        }
                    ),
                    "status": 400,
                }
            ],
        )
    )
    refused = poller.poll("search")
    assert refused.outcome == "refused"
    assert refused.reason == (
        "HTTP 400: since_id must be newer; the search's cursor is dropped and it starts afresh"
    )
    assert poller.state("search")["cursor"] == {}
    assert refused.next_due <= clock.now + 30
    again = poller.poll("search")
    assert (again.outcome, again.accepted) == ("ok", 1)
    assert "since_id" not in stub.requests[-1]["query"]
    producer.close(10)
    # With stub_without_token off, an account without its token is not polled at all.
    strict = configure(tmp_path / "strict", url, accounts, stub_without_token=False)
    asked = len(stub.requests)
    off, other = make_poller(strict, clock)
    result = off.poll("search")
    assert (result.outcome, result.reason) == (
        "auth_failed",
        "SP_TEST_X is not set (and stub_without_token is off)",
    )
    assert len(stub.requests) == asked
    other.close(10)
