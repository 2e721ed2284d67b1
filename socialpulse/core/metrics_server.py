"""The worker's /metrics endpoint: prometheus_client's registry plus fast-rendered families.

The registry holds the worker's own, fixed metrics (counters, histograms, small collectors);
``sources`` give the families that grow with brands (running totals, windows, rule states),
rendered by :mod:`socialpulse.core.exposition`. The format follows the scraper's Accept header
as prometheus_client's own server does (OpenMetrics for Prometheus, text 0.0.4 otherwise).

A source that fails is left out of that scrape (logged, and counted by the source itself where
it can tell why); the rest is still served, so one broken reader never blanks the boards.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from socialpulse.core.exposition import Family, Rendered, render

log = logging.getLogger(__name__)

Source = Callable[[], Iterable[Family] | Rendered]
OPENMETRICS_EOF = b"# EOF\n"


class NotAcceptable(ValueError):
    """An Accept header prometheus_client cannot read (it raises on some malformed ones)."""


def exposition(
    registry: CollectorRegistry, sources: Sequence[Source], accept: str
) -> tuple[bytes, str]:
    """The /metrics body and its content type for a scraper sending ``accept``; raises
    NotAcceptable for an Accept header that cannot be read."""
    try:
        encoder, content_type = choose_encoder(accept)
    except Exception as exc:
        raise NotAcceptable(
            f"Accept header not understood ({type(exc).__name__}); send "
            "application/openmetrics-text; version=1.0.0 or text/plain; version=0.0.4"
        ) from exc
    openmetrics = content_type.startswith("application/openmetrics-text")
    head = encoder(registry)
    if openmetrics:
        head = head.removesuffix(OPENMETRICS_EOF)
    parts = [head]
    for source in sources:
        try:
            got = source()
            text = got.text(openmetrics) if isinstance(got, Rendered) else render(got, openmetrics)
        except Exception:
            log.exception("metrics: %s failed; its families are left out of this scrape", source)
            continue
        parts.append(text.encode())
    if openmetrics:
        parts.append(OPENMETRICS_EOF)
    return b"".join(parts), content_type


class _Handler(BaseHTTPRequestHandler):
    registry: CollectorRegistry
    sources: Sequence[Source]
    timeout = 30  # seconds a client has to send its request line and headers

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/"):
            self._answer(404, b"not found: /metrics is the only path here\n", "text/plain")
            return
        try:
            body, content_type = exposition(
                self.registry, self.sources, self.headers.get("Accept", "")
            )
        except NotAcceptable as exc:
            self._answer(406, f"{exc}\n".encode(), "text/plain")
            return
        except Exception as exc:
            log.exception("metrics: the registry could not be rendered")
            self._answer(503, f"metrics unavailable: {exc}\n".encode(), "text/plain")
            return
        self._answer(200, body, content_type)

    def _refuse_method(self) -> None:
        self._answer(405, b"only GET /metrics is served here\n", "text/plain", ("Allow", "GET"))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method

    def _answer(self, status: int, body: bytes, content_type: str, *extra: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes every few seconds would drown the worker's log


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A scraper that gave up mid-answer (its timeout) is not a fault of ours: one line,
        # not socketserver's traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("metrics: %s left before its answer: %s", client_address[0], error)
            return
        log.exception("metrics: answering %s failed", client_address[0])


def serve(
    registry: CollectorRegistry, sources: Sequence[Source], host: str, port: int
) -> ThreadingHTTPServer:
    """Serve /metrics on ``host:port`` from a daemon thread; returns the server (``shutdown()``
    stops it)."""
    handler = type("MetricsHandler", (_Handler,), {"registry": registry, "sources": sources})
    server = _Server((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
