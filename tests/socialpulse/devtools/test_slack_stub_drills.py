"""The Slack stub's drill endpoints (/stub/faults, /stub/click) refuse what they cannot use with
400 and the reason, never a dropped connection; the stub runs here, in this process."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from socialpulse.devtools.slack_stub import make_server
from tests.conftest import free_port


@pytest.fixture
def stub() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/stub/faults", b"{not json", "bad_request: send a JSON object"),
        ("/stub/faults", b"\xff\xfe", "bad_request: send a JSON object"),
        ("/stub/faults", b"[1, 2]", "bad_request: send a JSON object"),
        (
            "/stub/faults",
            b'{"channel": ["#c"], "responses": []}',
            "bad_request: channel: a channel name such as #c, or leave it out for any channel",
        ),
        (
            "/stub/faults",
            b'{"responses": {"status": 500}}',
            'bad_request: responses: a list of objects such as {"status": 500}',
        ),
        (
            "/stub/faults",
            b'{"responses": [{"status": 42}]}',
            "bad_request: responses[0].status: an HTTP status from 100 to 599",
        ),
        (
            "/stub/faults",
            b'{"responses": [{"status": 500}, {"delay": 1e9}]}',
            "bad_request: responses[1].delay: seconds, from 0 to 60",
        ),
        (
            "/stub/faults",
            b'{"responses": [{"retry_after": "soon"}]}',
            "bad_request: responses[0].retry_after: seconds, from 0 to 60",
        ),
        ("/stub/click", b"null", "bad_request: send a JSON object"),
        (
            "/stub/click",
            b'{"url": "file:///etc/passwd"}',
            "bad_request: url: the interactivity endpoint, "
            "e.g. http://127.0.0.1:9311/slack/interactivity",
        ),
        (
            "/stub/click",
            b'{"url": "http://127.0.0.1:1/x", "age": "old"}',
            "bad_request: age: seconds to backdate the timestamp, from 0 to 86400",
        ),
        (
            "/stub/click",
            b'{"url": "http://127.0.0.1:1/x", "user": {"id": "U1"}}',
            "bad_request: user: a string",
        ),
        (
            "/stub/click",
            b'{"url": "http://127.0.0.1:1/x", "selected": 3}',
            "bad_request: selected: a string",
        ),
        ("/stub/command", b"[]", "bad_request: send a JSON object"),
        (
            "/stub/command",
            b'{"url": "ftp://x"}',
            "bad_request: url: the slash command endpoint, "
            "e.g. http://127.0.0.1:9311/slack/commands",
        ),
        (
            "/stub/command",
            b'{"url": "http://127.0.0.1:1/x", "text": ["silence"]}',
            "bad_request: text: a string",
        ),
        (
            "/stub/command",
            b'{"url": "http://127.0.0.1:1/x", "age": -5}',
            "bad_request: age: seconds to backdate the timestamp, from 0 to 86400",
        ),
    ],
)
def test_a_bad_drill_request_is_400_with_its_reason(
    stub: int, path: str, body: bytes, reason: str
) -> None:
    assert post(stub, path, body) == (400, {"ok": False, "error": reason})


def test_a_bad_content_length_is_400_and_a_refused_fault_changes_nothing(stub: int) -> None:
    assert post(stub, "/stub/faults", b"{}", {"Content-Length": "-1"}) == (
        400,
        {"ok": False, "error": "bad_request: Content-Length"},
    )
    post(stub, "/stub/faults", b'{"responses": [{"status": "x"}]}')
    # No fault was queued: the next call is answered as Slack would (no token: not_authed).
    assert post(stub, "/api/chat.postMessage", b"{}") == (200, {"ok": False, "error": "not_authed"})


def test_a_click_to_an_endpoint_that_is_down_is_502_with_the_reason(stub: int) -> None:
    body = json.dumps({"url": f"http://127.0.0.1:{free_port()}/slack/interactivity"}).encode()
    status, answer = post(stub, "/stub/click", body)
    assert status == 502 and answer["ok"] is False
    assert answer["error"].startswith("endpoint_unreachable: ")


def test_a_command_to_an_endpoint_that_is_down_is_502_with_the_reason(stub: int) -> None:
    body = json.dumps({"url": f"http://127.0.0.1:{free_port()}/slack/commands"}).encode()
    status, answer = post(stub, "/stub/command", body)
    assert status == 502 and answer["error"].startswith("endpoint_unreachable: ")
