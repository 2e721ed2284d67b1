"""The Slack button endpoint of a real worker on the real stack: bodies it cannot bound are
refused before reading (and the worker's memory stays put), slow requests get 408, connections
beyond the bound 503, malformed signed payloads 400 or 401 (never a dropped connection), and a
signed click replayed within the five minutes is refused and applied once."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from alerts.incidents.oncall import Interactivity as InteractivityConfig
from alerts.notify.interactivity import MAX_AGE, replay_key, signing_secret
from socialpulse.app.settings import Settings
from tests.conftest import Worker, run_cli, start_worker, stop_worker, trickle, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import metrics, stub_messages, wait_until

RESPONDER = "U0SOCIAL1"
BRANDS = [{"id": "acme", "name": "Acme Coffee", "platforms": ["x"]}]
RULES = [
    {
        "name": "negatives_high",
        "kind": "threshold",
        "kpi": "mentions_negative",
        "window": "1m",
        "value": 6,
        "clear_value": 2,
        "severity": "critical",
    }
]
TIMEOUT = 2  # request_timeout, seconds
CONNECTIONS = 8  # max_connections
# The worker signs with what the test process would use (the stub's secret unless set).
SECRET = signing_secret({k: v for k, v in os.environ.items() if k != "SLACK_BOT_TOKEN"})


@pytest.fixture(scope="module")
def worker(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    run = uuid.uuid4().hex[:10]
    incidents = {
        "responders": [RESPONDER],
        "interactivity": {"request_timeout": f"{TIMEOUT}s", "max_connections": CONNECTIONS},
    }
    config = write_config(
        tmp_path_factory.mktemp("config"),
        run,
        brands=BRANDS,
        rules=RULES,
        alerts={"incidents": incidents},
    )
    started = start_worker(config, tmp_path_factory.mktemp("logs") / "worker.log")
    yield started
    stop_worker(started)


def endpoint(worker: Worker) -> InteractivityConfig:
    return worker.settings.alerts.incidents.interactivity


def head(config: InteractivityConfig, *lines: str | bytes) -> bytes:
    """A POST's head with these header lines."""
    start = [f"POST {config.path} HTTP/1.1", "Host: t", *lines]
    return b"\r\n".join(v if isinstance(v, bytes) else v.encode() for v in start) + b"\r\n\r\n"


def exchange(config: InteractivityConfig, data: bytes) -> tuple[int, str, float, bool]:
    """Send ``data``; the answer's status and body, how long it took, and whether the server
    closed the connection after it."""
    started = time.monotonic()
    with socket.create_connection((config.host, config.port), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        text = response.read().decode()
        took = time.monotonic() - started
        closed = response.will_close
    return response.status, text, took, closed


def signed(body: bytes, timestamp: int | None = None) -> list[str]:
    """Slack's header lines for ``body``, signed over its exact bytes as Slack does."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return [f"X-Slack-Request-Timestamp: {ts}", f"X-Slack-Signature: v0={digest}"]


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": RESPONDER},
        "channel": {"id": "C0TEST"},
        "actions": [{"action_id": "ack", "value": "acme-1", "type": "button"}],
    }
    return payload | changes


def post(config: InteractivityConfig, body: bytes, *lines: str | bytes) -> tuple[int, str]:
    """A POST with a Content-Length and these header lines: status and body of the answer."""
    status, text, _, _ = exchange(
        config, head(config, *lines, f"Content-Length: {len(body)}") + body
    )
    return status, text


def rss_kib(worker: Worker) -> int:
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def interactions(worker: Worker) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in metrics(worker.metrics_url).items()
        if name == "socialpulse_slack_interactions_total"
    }


NO_LENGTH = (411, "Content-Length is required (no Transfer-Encoding)")
BAD_LENGTH = (400, "Invalid HTTP request received. (bad Content-Length)")
TOO_LARGE = (413, "the body is over 65536 bytes (incidents.interactivity.max_body)")


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("Content-Length: -1", BAD_LENGTH),
        ("Content-Length: abc", BAD_LENGTH),
        ("X-No-Length: 1", NO_LENGTH),
        ("Transfer-Encoding: chunked", NO_LENGTH),
        (f"Content-Length: {50 * 1024 * 1024}", TOO_LARGE),
    ],
    ids=["negative", "not a number", "missing", "chunked", "50 MB"],
)
def test_a_body_it_cannot_bound_is_refused_before_reading(
    worker: Worker, line: str, answer: tuple[int, str]
) -> None:
    config = endpoint(worker)
    before = rss_kib(worker)
    with socket.create_connection((config.host, config.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head(config, line))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.read().decode()) == answer
        assert time.monotonic() - started < 1.0
        assert response.will_close
        # Then 50 MB of body, as the attack did: the server has closed, so little gets through.
        sent, chunk = 0, b"x" * (1024 * 1024)
        try:
            while sent < 50 * len(chunk):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # broken pipe or reset: the connection is gone
            pass
        assert sent < 50 * len(chunk)
    time.sleep(0.5)
    assert rss_kib(worker) - before < 20 * 1024  # KiB; the old endpoint grew by the body


def test_a_body_sent_a_byte_a_second_gets_408(worker: Worker) -> None:
    config = endpoint(worker)
    with socket.create_connection((config.host, config.port), timeout=10) as sock:
        sock.sendall(head(config, "Content-Length: 100"))
        answered = trickle(sock, TIMEOUT + 5)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.read().decode()) == (
            408,
            f"the request was not received within {TIMEOUT} s",
        )
    assert TIMEOUT - 0.1 <= answered < TIMEOUT + 1.0


def test_connections_beyond_the_bound_get_503_then_it_answers_again(worker: Worker) -> None:
    config = endpoint(worker)
    idle = [socket.create_connection((config.host, config.port)) for _ in range(CONNECTIONS)]
    try:
        time.sleep(0.2)
        with socket.create_connection((config.host, config.port), timeout=5) as extra:
            started = time.monotonic()
            response = http.client.HTTPResponse(extra)
            response.begin()
            assert (response.status, response.getheader("Retry-After")) == (503, "1")
            assert response.read().decode() == (
                f"more than {CONNECTIONS} open connections; retry shortly"
            )
            assert time.monotonic() - started < 1.0
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    unsigned = (401, "X-Slack-Request-Timestamp and X-Slack-Signature are required")
    assert post(config, b"payload=1") == unsigned


def test_malformed_requests_are_answered_with_the_reason(worker: Worker) -> None:
    config = endpoint(worker)
    before = interactions(worker)
    cases: list[tuple[bytes, list[str | bytes], tuple[int, str]]] = []
    for payload, reason in (
        ([click()], "payload is a JSON list, not an object"),
        (click(actions=5), "payload.actions is not a non-empty list"),
        (click(user=RESPONDER), "payload.user is not an object with a Slack user id"),
    ):
        body = form(payload)
        cases.append((body, [*signed(body)], (400, reason)))
    not_utf8 = b"payload=\xff\xfe"
    cases.append((not_utf8, [*signed(not_utf8)], (400, "the body is not UTF-8")))
    body = form(click())
    timestamp = signed(body)[0]
    non_ascii: list[str | bytes] = [timestamp, b"X-Slack-Signature: v0=\xe9\xff\xe9"]
    cases.append((body, non_ascii, (401, "X-Slack-Signature is not v0= and 64 hex digits")))
    garbage_time: list[str | bytes] = ["X-Slack-Request-Timestamp: soon", signed(body)[1]]
    cases.append((body, garbage_time, (401, "X-Slack-Request-Timestamp is not a unix time")))
    future = signed(body, int(time.time()) + 3600)
    stale = "X-Slack-Request-Timestamp is more than 5 minutes from now (an old request, or a "
    cases.append((body, [*future], (401, stale + "clock that is off)")))
    for sent, lines, answer in cases:
        assert post(config, sent, *lines) == answer, sent
    after = interactions(worker)
    grew = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    assert grew == {"bad_request": 4.0, "forged": 2.0, "stale": 1.0}
    assert "Traceback" not in worker.log_text()


def test_a_replayed_click_is_refused_and_applied_once(worker: Worker) -> None:
    settings = worker.settings
    config = endpoint(worker)
    produce(
        settings,
        settings.pipeline.topics.mentions,
        [mention("acme", "x", "Charged twice", "negative") for _ in range(6)],
    )
    wait_until(lambda: stub_messages(settings), timeout=40, what="the incident post")
    body = form(click())
    lines = signed(body)
    assert post(config, body, *lines) == (200, "")
    assert post(config, body, *lines) == (
        401,
        "this request was received before; nothing changed",
    )

    def shown() -> dict[str, Any]:
        done = run_cli(settings, "incidents", "show", "acme-1", "--format", "json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    wait_until(lambda: shown()["state"] == "acknowledged", timeout=30, what="the acknowledgement")
    time.sleep(2)  # the incident round runs every second: time for a second one to show
    actions = [(e["who"], e["action"]) for e in shown()["timeline"]]
    assert actions == [("socialpulse", "opened"), (RESPONDER, "acknowledged")]
    # The signature is kept, shared by every worker, until its timestamp leaves the window.
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    key = replay_key(settings.pipeline.redis.key_prefix, lines[1].split(": ")[1])
    assert key.startswith(f"{settings.pipeline.redis.key_prefix}:slack-signature:")
    assert 0 < client.ttl(key) <= MAX_AGE + 61
    client.close()
