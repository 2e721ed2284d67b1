"""Serving SocialPulse's HTTP endpoints (the ingest gateway, the Slack button endpoint) with the
limits a server that faces other machines needs: uvicorn on h11, plus what uvicorn lacks.

uvicorn bounds neither the time a client may take to send its request nor the number of
connections it holds open (``limit_concurrency`` only answers 503 to requests once they have
been read, and its keep-alive timer starts after the first response), so one client sending a
byte a second, or opening connections without sending anything, would hold sockets forever.
:func:`guarded_protocol` adds both:

- a request deadline: a connection has ``request_timeout`` seconds from its opening (and from
  the end of each response) to deliver a whole request, head and body; a slower one gets
  ``408`` and is closed. The application's own work after the body has arrived is not timed.
- a connection bound: beyond ``max_connections`` open connections a new one gets ``503`` with
  ``Retry-After`` at once and is closed, before anything is read.
- on stop, a request that starts on an idle connection in the next half second gets ``503``
  with ``Retry-After`` (uvicorn would close the connection on it); and ``stop_receiving()``
  (called by the server owner before its graceful time runs out) answers ``503`` to requests
  whose body is still arriving.

Malformed requests (a ``Content-Length`` that is negative or not a number, broken framing) are
refused by h11 before the application sees them; the 400 names h11's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

MAX_400_DETAIL = 300  # characters of h11's reason in a 400 (it may quote kilobytes sent)


@dataclass(frozen=True)
class HttpLimits:
    """How long and how many: the limits of one endpoint (each from its own config section)."""

    request_timeout: float = 10.0  # seconds to receive a whole request, head and body
    max_connections: int = 100  # open connections at once; more are refused with 503
    keep_alive: int = 5  # seconds an idle connection stays open between requests
    shutdown_timeout: float = 5.0  # seconds requests in progress get to finish on stop


LINGER = 1.0  # seconds a refused connection is read (and dropped) before it is closed
STOP_LINGER = 0.5  # seconds an idle connection is kept on stop, to answer a request on its way


def _plain(status: int, reason: bytes, text: str, *extra: tuple[bytes, bytes]) -> list[Any]:
    body = text.encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra,
    ]
    return [h11.Response(status_code=status, headers=headers, reason=reason), h11.Data(data=body)]


def _stopping_answer() -> list[Any]:
    return _plain(
        503,
        b"Service Unavailable",
        "the server is stopping before the request was received; retry",
        (b"retry-after", b"1"),
    )


def guarded_protocol(limits: HttpLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a request deadline and a bound on open connections."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _protocol_error = ""
        _answered = False  # refused with an answer of ours; closing soon
        _stopping = False  # the server stops: a request that starts now gets 503

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._refuse(
                    _plain(
                        503,
                        b"Service Unavailable",
                        f"more than {limits.max_connections} open connections; retry shortly",
                        (b"retry-after", b"1"),
                    )
                )
                return
            self._arm()
            next_event = self.conn.next_event

            def remember_error() -> Any:
                try:
                    return next_event()
                except h11.RemoteProtocolError as exc:
                    self._protocol_error = str(exc)
                    raise

            # h11's reason for refusing a request (e.g. a malformed Content-Length) is more
            # use to the sender than uvicorn's fixed "Invalid HTTP request received."
            self.conn.next_event = remember_error  # type: ignore[method-assign]

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._answered:
                return  # refused and answered: what still arrives is read and dropped
            if self._stopping and (self.cycle is None or self.cycle.response_complete):
                self._refuse(_stopping_answer())
                return
            super().data_received(data)
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
                self._disarm()  # the whole request is in: the application's time is its own

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def send_400_response(self, msg: str) -> None:
            if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                # The application answered before reading the whole (malformed) body: h11
                # cannot send a second response, and trying raised out of data_received.
                self.transport.close()
                return
            detail = f"{msg} ({self._protocol_error})" if self._protocol_error else msg
            # h11's reason quotes the offending bytes: keep the answer short and ASCII.
            detail = detail.encode("ascii", "backslashreplace").decode("ascii")
            super().send_400_response(detail[:MAX_400_DETAIL])

        def shutdown(self) -> None:
            """The server stops. uvicorn closes an idle connection at once, but a request
            may be on its way (sent, not yet read by the loop), and closing on it loses it
            without a word: for a moment, what arrives gets 503 with Retry-After instead."""
            idle = self.cycle is None or self.cycle.response_complete
            if not idle or self.transport.is_closing() or self._answered:
                super().shutdown()
                return
            self._stopping = True
            self.loop.call_later(STOP_LINGER, self._close_if_idle)

        def _close_if_idle(self) -> None:
            if self.transport.is_closing() or self._answered:
                return
            if self.conn.trailing_data[0]:  # part of a request's head came
                self._refuse(_stopping_answer())
            else:
                self.transport.close()

        def stop_receiving(self) -> None:
            """The server is stopping: a request not yet fully received gets 503 with
            Retry-After and the connection is closed, so its application ends instead of being
            cancelled (with a traceback) when the graceful shutdown time runs out."""
            if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
                return  # idle or done: uvicorn's own shutdown closes it after the answer
            self._disarm()
            self._refuse(_stopping_answer())

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.request_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state is h11.DONE:
                return
            idle = self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]
            if idle and (self.cycle is None or self.cycle.response_complete):
                # An idle connection (nothing of a next request yet) is closed quietly.
                self.transport.close()
                return
            self._refuse(
                _plain(
                    408,
                    b"Request Timeout",
                    f"the request was not received within {limits.request_timeout:g} s",
                )
            )

        def _refuse(self, events: list[Any]) -> None:
            if self.cycle is not None:
                # The application may still be waiting for the body: it must not answer too.
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            if self.cycle is None or not self.cycle.response_started:
                try:
                    self.transport.write(b"".join(self.conn.send(e) or b"" for e in events))
                    self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
                except h11.LocalProtocolError:
                    pass  # h11 cannot answer in this state; closing is all that is left
            # Closing a socket with unread data makes the kernel reset the connection, and
            # the client may lose the answer: end our side, read and drop what still comes for
            # a moment, then close.
            self._answered = True
            self._disarm()
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER, self.transport.close)

    return GuardedH11Protocol


def _forgiving(app: Any) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        # Gone before its body arrived (or timed out): there is nobody to answer.
        with contextlib.suppress(ClientDisconnect):
            await app(scope, receive, send)

    return asgi


def server_config(
    app: Any, host: str, port: int, limits: HttpLimits, **options: Any
) -> uvicorn.Config:
    """uvicorn's config for ``app`` with ``limits``, no access log (query strings may hold
    tokens) and uvicorn's own logging left to ours."""
    return uvicorn.Config(
        _forgiving(app),
        host=host,
        port=port,
        http=guarded_protocol(limits),
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=max(1, round(limits.shutdown_timeout)),
        access_log=False,
        log_config=None,
        **options,
    )


class BackgroundServer:
    """A uvicorn server on its own event loop in a daemon thread (beside a worker's loop)."""

    def __init__(self, config: uvicorn.Config, name: str):
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start serving; wait until the socket listens (RuntimeError when it does not)."""
        self.thread.start()
        self.thread.join(0.01)
        waited = 0.0
        while not self.server.started and self.thread.is_alive() and waited < timeout:
            self.thread.join(0.05)
            waited += 0.05
        if not self.server.started:
            config = self.server.config
            raise RuntimeError(
                f"{self.thread.name}: could not listen on {config.host}:{config.port} "
                "(is the port in use?)"
            )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, give requests in progress the config's shutdown time, then end."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(1.0)


__all__ = ["BackgroundServer", "HttpLimits", "guarded_protocol", "server_config"]
