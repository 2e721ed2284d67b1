"""The gateway's own Prometheus metrics, and the middleware that counts requests by route."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The gateway's Prometheus metrics (its own registry, served at /metrics)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "socialpulse_ingest_requests",
            "Requests by route and status",
            ["route", "code"],
            registry=r,
        )
        self.events = Counter(
            "socialpulse_ingest_events",
            "Items by source and outcome (accepted: written to Kafka)",
            ["source", "outcome", "reason"],
            registry=r,
        )
        self.refused = Counter(
            "socialpulse_ingest_refused_requests",
            "Requests refused as a whole: unauthorized, bad_signature, too_large, busy, ...",
            ["route", "reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            "socialpulse_ingest_in_flight_events", "Events waiting for Kafka's ack", registry=r
        )
        self.duration = Histogram(
            "socialpulse_ingest_request_duration_seconds",
            "Time to answer a request, Kafka's acknowledgement included",
            ["route"],
            registry=r,
        )


class CountRequests:
    """ASGI middleware: requests and answer times by route and status (only known routes
    become label values, so random paths add no series)."""

    def __init__(self, app: Any, metrics: Metrics, known_routes: set[str]):
        self.app, self.metrics, self.known = app, metrics, known_routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on, noting the status it was answered with."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), []

        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            if status:  # none when the client went away before an answer
                route = path if path in self.known else "other"
                self.metrics.requests.labels(route, str(status[0])).inc()
                self.metrics.duration.labels(route).observe(time.perf_counter() - started)
