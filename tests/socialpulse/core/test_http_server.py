"""The HTTP limits every SocialPulse endpoint runs with (socialpulse.core.http_server), on a real
uvicorn server on a loopback socket: a request must arrive whole within the request timeout,
connections beyond the bound are refused at once, malformed framing gets 400 with h11's
reason, and none of it costs the next client anything."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from socialpulse.core.http_server import BackgroundServer, HttpLimits, server_config
from tests.conftest import free_port

LIMITS = HttpLimits(request_timeout=1.0, max_connections=4, keep_alive=1, shutdown_timeout=1.0)


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"got {len(await request.body())} bytes")


@pytest.fixture
def server() -> Iterator[int]:
    port = free_port()
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    running = BackgroundServer(server_config(app, "127.0.0.1", port, LIMITS), "test").start()
    try:
        yield port
    finally:
        running.stop(2.0)


def answer(sock: socket.socket, wait: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``wait`` passes)."""
    sock.settimeout(wait)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pass
    return data


def request(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(raw)
        return answer(sock)


def status_and_body(response: bytes) -> tuple[str, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


POST = b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"


def test_a_whole_request_is_answered(server: int) -> None:
    response = request(server, POST + b"Content-Length: 3\r\n\r\nabc")
    assert status_and_body(response) == ("HTTP/1.1 200 OK", "got 3 bytes")


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b" "])
def test_a_malformed_content_length_gets_400_with_the_reason(server: int, length: bytes) -> None:
    response = request(server, POST + b"Content-Length: " + length + b"\r\n\r\nabc")
    assert status_and_body(response) == (
        "HTTP/1.1 400 Bad Request",
        "Invalid HTTP request received. (bad Content-Length)",
    )


def test_a_body_sent_slowly_gets_408_within_the_request_timeout(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(POST + b"Content-Length: 30\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(0.2)
        response = b""
        for _ in range(30):  # a byte every 0.2 s: 6 s for the body, the timeout is 1 s
            try:
                sock.sendall(b"a")
                response += sock.recv(4096)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            if response:
                break
        waited = time.monotonic() - started
        response += answer(sock, 1.0)
    assert status_and_body(response) == (
        "HTTP/1.1 408 Request Timeout",
        "the request was not received within 1 s",
    )
    assert waited < 2.5


def test_a_head_sent_slowly_gets_408_and_a_silent_connection_is_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\n")  # and never the rest
        assert status_and_body(answer(sock))[0] == "HTTP/1.1 408 Request Timeout"
    with socket.create_connection(("127.0.0.1", server)) as sock:
        started = time.monotonic()
        assert answer(sock) == b""  # closed without a word: nothing was asked
        assert time.monotonic() - started < 2.5


def test_connections_beyond_the_bound_get_503_at_once_and_others_are_served_after(
    server: int,
) -> None:
    idle = [socket.create_connection(("127.0.0.1", server)) for _ in range(LIMITS.max_connections)]
    time.sleep(0.2)
    try:
        started = time.monotonic()
        refused = request(server, POST + b"Content-Length: 3\r\n\r\nabc")
        assert time.monotonic() - started < 1.0
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"retry-after: 1" in head.lower()
        assert body == b"more than 4 open connections; retry shortly"
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    served = request(server, POST + b"Content-Length: 3\r\n\r\nabc")
    assert status_and_body(served) == ("HTTP/1.1 200 OK", "got 3 bytes")


def test_stopping_takes_at_most_the_shutdown_time_with_a_request_half_sent() -> None:
    port = free_port()
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    limits = HttpLimits(request_timeout=30, max_connections=4, shutdown_timeout=1.0)
    running = BackgroundServer(server_config(app, "127.0.0.1", port, limits), "test").start()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(POST + b"Content-Length: 10\r\n\r\nabc")  # 7 bytes short
        time.sleep(0.2)
        started = time.monotonic()
        running.stop(1.0)
        assert time.monotonic() - started < 2.5
        assert not running.thread.is_alive()


def test_a_request_arriving_just_after_the_stop_gets_503_not_a_closed_connection() -> None:
    # A client that sent its request as the stop began (its bytes not yet read by the
    # server) is told to retry; uvicorn alone closes the idle connection on it.
    port = free_port()
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    limits = HttpLimits(request_timeout=30, max_connections=4, shutdown_timeout=1.0)
    running = BackgroundServer(server_config(app, "127.0.0.1", port, limits), "test").start()
    with (
        socket.create_connection(("127.0.0.1", port)) as idle,
        socket.create_connection(("127.0.0.1", port)) as quiet,
    ):
        time.sleep(0.2)  # both accepted, nothing sent
        running.server.should_exit = True
        time.sleep(0.3)  # uvicorn's loop has begun its shutdown
        idle.sendall(POST + b"Content-Length: 3\r\n\r\nabc")
        head, _, text = answer(idle).partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"retry-after: 1" in head.lower().split(b"\r\n")
        assert text == b"the server is stopping before the request was received; retry"
        assert answer(quiet) == b""  # sent nothing: closed without a word
    running.stop(3.0)
    assert not running.thread.is_alive()
