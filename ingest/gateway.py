"""The HTTP ingest gateway: events, Meta webhooks and generic signed webhooks into Kafka.

Routes (the OpenAPI description is served at ``/openapi.json``, browsable at ``/docs``):

- ``POST /v1/events``: one event, a JSON array of events, or NDJSON; bearer token per source.
- ``GET /v1/webhooks/meta``: Meta's subscription handshake; ``POST``: signed notifications.
- ``POST /v1/webhooks/<name>``: a webhook of config/ingest.yaml, HMAC-signed over the body.
- ``GET /healthz``; ``GET /metrics`` (Prometheus).

Every item is validated against the event schemas; valid ones are written to Kafka keyed by
brand with acks=all before the response says "accepted"; invalid ones are listed with their
index, reason and detail. A request never gets a 2xx for events Kafka has not acknowledged.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
from pydantic import BaseModel

from ingest import meta
from ingest.config import IngestFile
from ingest.kafka_writer import Busy, KafkaWriter, NotAcknowledged
from ingest.mapping import apply_mapping, records_of
from ingest.signatures import valid_signature
from ingest.validation import Accepted, Rejected, parse_ndjson, validate_item
from socialpulse.settings import Settings
from streams.events import Interaction, Mention

log = logging.getLogger(__name__)

RETRY_AFTER = "1"  # seconds, for 429 and 503


class ItemError(BaseModel):
    """Why one item of a request was rejected."""

    index: int
    reason: str
    detail: str


class IngestResult(BaseModel):
    """What happened to a request's items."""

    accepted: int
    rejected: int
    skipped: int = 0  # webhook notifications SocialPulse does not use (edits, read receipts)
    errors: list[ItemError] = []


class Problem(BaseModel):
    """A request refused as a whole."""

    error: str
    detail: str


def _body_schema(event_refs: dict[str, Any]) -> dict[str, Any]:
    one = {"oneOf": [{"$ref": ref} for ref in event_refs.values()]}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [one, {"type": "array", "items": one}]},
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one event per line"}
                },
            },
        }
    }


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


def problem(status: int, error: str, detail: str, **headers: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse({"error": error, "detail": detail}, status, headers=headers or None)


class TooLarge(Exception):
    """The request body is over the limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read up to ``limit`` bytes; TooLarge beyond (without reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_items(body: bytes, content_type: str) -> list[Any] | Problem:
    """The items of a body: one JSON object, a JSON array, or NDJSON (by content type, or when
    the body is not one JSON value but has several lines)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(
            error="not_utf8", detail=f"the body is not UTF-8: {exc.reason} at byte {exc.start}"
        )
    if "ndjson" in content_type or "jsonl" in content_type:
        return list(parse_ndjson(text))
    try:
        payload = json.loads(text)
    except RecursionError:
        return Problem(error="not_json", detail="JSON nested too deeply")
    except json.JSONDecodeError as exc:
        if "\n" in text.strip():
            return list(parse_ndjson(text))
        return Problem(error="not_json", detail=f"the body is not JSON: {exc}")
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        return [payload]
    return Problem(
        error="not_json", detail="the body is neither an event object nor an array of events"
    )


class Gateway:
    """The gateway's state and request logic, behind the FastAPI routes."""

    def __init__(
        self,
        settings: Settings,
        ingest: IngestFile,
        writer: KafkaWriter,
        environ: Mapping[str, str],
    ):
        self.settings = settings
        self.ingest = ingest
        self.writer = writer
        self.tokens = ingest.tokens(environ)
        self.metrics = Metrics()
        self.metrics.in_flight.set_function(lambda: writer.in_flight)
        self.known = settings.strict_known

    def source_of(self, request: Request) -> str | None:
        """The source whose bearer token the request carries, or None."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        found = None
        for source, expected in self.tokens.items():
            # Compare with every token, so the time taken does not tell which one was close.
            if hmac.compare_digest(expected.encode(), token.strip().encode()):
                found = source
        return found

    def validate(self, items: list[Any]) -> tuple[list[Accepted], list[ItemError]]:
        """Split items into valid events and per-item errors."""
        now = time.time()
        max_future = float(self.settings.pipeline.windows.max_future)
        accepted, errors = [], []
        for index, item in enumerate(items):
            result = (
                item
                if isinstance(item, Rejected)
                else validate_item(item, now, max_future, self.known)
            )
            if isinstance(result, Accepted):
                accepted.append(result)
            else:
                errors.append(ItemError(index=index, reason=result.reason, detail=result.detail))
        return accepted, errors

    async def deliver(
        self, route: str, source: str, items: list[Any], skipped: int = 0
    ) -> JSONResponse:
        """Validate, write the valid items to Kafka, and answer with the counts."""
        if len(items) > self.ingest.gateway.max_batch_events:
            self.metrics.refused.labels(route, "too_many_events").inc()
            return problem(
                413,
                "too_many_events",
                f"{len(items)} items is over the batch limit of "
                f"{self.ingest.gateway.max_batch_events}; split the batch",
            )
        accepted, errors = self.validate(items)
        try:
            await self.writer.write(accepted)
        except Busy as exc:
            self.metrics.refused.labels(route, "busy").inc()
            return problem(429, "busy", f"{exc}; retry later", **{"Retry-After": RETRY_AFTER})
        except NotAcknowledged as exc:
            self.metrics.refused.labels(route, "kafka_unavailable").inc()
            log.warning("ingest: %s (%d events, route %s)", exc, len(accepted), route)
            return problem(
                503,
                "kafka_unavailable",
                f"{exc}; nothing of this request is acknowledged, retry it (event ids make "
                "a retry count once)",
                **{"Retry-After": RETRY_AFTER},
            )
        self.metrics.events.labels(source, "accepted", "").inc(len(accepted))
        for error in errors:
            self.metrics.events.labels(source, "rejected", error.reason).inc()
        result = IngestResult(
            accepted=len(accepted), rejected=len(errors), skipped=skipped, errors=errors
        )
        status = 422 if errors and not accepted else 200
        return JSONResponse(result.model_dump(), status)


def create_app(
    settings: Settings,
    ingest: IngestFile,
    writer: KafkaWriter | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The gateway's ASGI app; it connects ``writer`` (by default one for ``settings``) to
    Kafka on startup."""
    import os

    env = dict(os.environ if environ is None else environ)
    options = ingest.gateway
    kafka = writer or KafkaWriter(settings, options.max_in_flight, float(options.produce_timeout))
    gateway = Gateway(settings, ingest, kafka, env)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await kafka.start()
        try:
            yield
        finally:
            await kafka.stop()

    app = FastAPI(
        title="SocialPulse ingest gateway",
        version="1",
        description=(
            "Events into SocialPulse: validated against the event schemas and written to Kafka "
            "(acks=all) before they are acknowledged."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.mount("/metrics", make_asgi_app(gateway.metrics.registry))
    limit = options.max_body_bytes
    schemas: dict[str, type[BaseModel]] = {"Mention": Mention, "Interaction": Interaction}
    refs = {name: f"#/components/schemas/{name}" for name in schemas}

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, model in schemas.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[name] = schema
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = spec
        return spec

    app.openapi = custom_openapi  # type: ignore[method-assign]

    responses: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "The body is not UTF-8 JSON or NDJSON"},
        413: {"model": Problem, "description": "Body or batch over the limit"},
        422: {"model": IngestResult, "description": "No item was valid"},
        429: {"model": Problem, "description": "Kafka is slow; retry after Retry-After"},
        503: {"model": Problem, "description": "Kafka did not acknowledge; retry"},
    }

    async def body_or_problem(request: Request, route: str) -> bytes | JSONResponse:
        try:
            return await read_body(request, limit)
        except TooLarge as exc:
            gateway.metrics.refused.labels(route, "too_large").inc()
            return problem(413, "too_large", str(exc))

    known_routes = {
        "/v1/events",
        "/v1/webhooks/meta",
        *(f"/v1/webhooks/{n}" for n in ingest.webhooks),
    }

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = request.url.path
        if route.startswith("/v1/"):
            # Only known routes become label values: random paths must not add series.
            route = route if route in known_routes else "other"
            gateway.metrics.requests.labels(route, str(response.status_code)).inc()
            gateway.metrics.duration.labels(route).observe(time.perf_counter() - started)
        return response

    @app.post(
        "/v1/events",
        response_model=IngestResult,
        responses={401: {"model": Problem, "description": "No valid bearer token"}, **responses},
        openapi_extra=_body_schema(refs) | {"security": [{"bearer": []}]},
        summary="Ingest one event, a JSON array of events, or NDJSON",
    )
    async def post_events(request: Request) -> Response:
        source = gateway.source_of(request)
        if source is None:
            gateway.metrics.refused.labels("/v1/events", "unauthorized").inc()
            return problem(
                401,
                "unauthorized",
                "send Authorization: Bearer <token> with a source's token",
                **{"WWW-Authenticate": "Bearer"},
            )
        body = await body_or_problem(request, "/v1/events")
        if isinstance(body, Response):
            return body
        items = parse_items(body, request.headers.get("content-type", ""))
        if isinstance(items, Problem):
            return problem(400, items.error, items.detail)
        return await gateway.deliver("/v1/events", source, items)

    @app.get(
        "/v1/webhooks/meta",
        response_class=PlainTextResponse,
        summary="Meta's subscription handshake: echoes hub.challenge for the right verify token",
        responses={403: {"description": "Wrong mode or verify token"}},
    )
    async def meta_handshake(request: Request) -> Response:
        token = env.get(ingest.meta.verify_token_env, "")
        challenge = meta.handshake(request.query_params, token)
        if challenge is None:
            gateway.metrics.refused.labels("/v1/webhooks/meta", "bad_verify_token").inc()
            return PlainTextResponse("verification refused", 403)
        return PlainTextResponse(challenge)

    @app.post(
        "/v1/webhooks/meta",
        response_model=IngestResult,
        responses={
            401: {"model": Problem, "description": "Missing or wrong signature"},
            **responses,
        },
        summary="Meta (Facebook Page, Instagram) change notifications, X-Hub-Signature-256",
    )
    async def meta_notification(request: Request) -> Response:
        route = "/v1/webhooks/meta"
        secret = env.get(ingest.meta.app_secret_env, "")
        if not secret:
            return problem(
                404, "not_configured", f"set {ingest.meta.app_secret_env} to receive Meta webhooks"
            )
        body = await body_or_problem(request, route)
        if isinstance(body, Response):
            return body
        if not valid_signature(secret, body, request.headers.get(meta.SIGNATURE_HEADER)):
            gateway.metrics.refused.labels(route, "bad_signature").inc()
            return problem(401, "bad_signature", f"{meta.SIGNATURE_HEADER} is missing or wrong")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return problem(400, "not_json", f"the body is not JSON: {exc}")
        mapped = meta.map_payload(payload, ingest.meta.accounts)
        return await gateway.deliver(
            route, "meta", [*mapped.events, *mapped.rejected], skipped=mapped.skipped
        )

    @app.post(
        "/v1/webhooks/{name}",
        response_model=IngestResult,
        responses={
            401: {"model": Problem, "description": "Missing or wrong signature"},
            404: {"model": Problem, "description": "No such webhook in config/ingest.yaml"},
            **responses,
        },
        summary="A generic webhook of config/ingest.yaml, HMAC-signed over the exact body",
    )
    async def webhook(name: str, request: Request) -> Response:
        hook = ingest.webhooks.get(name)
        if hook is None:
            return problem(404, "unknown_webhook", f"{name!r} is not a webhook of ingest.yaml")
        route = f"/v1/webhooks/{name}"
        secret = env.get(hook.secret_env, "")
        if not secret:
            return problem(404, "not_configured", f"set {hook.secret_env} to receive {name}")
        body = await body_or_problem(request, route)
        if isinstance(body, Response):
            return body
        header = request.headers.get(hook.signature_header)
        if not valid_signature(secret, body, header, hook.algorithm, hook.prefix, hook.encoding):
            gateway.metrics.refused.labels(route, "bad_signature").inc()
            return problem(401, "bad_signature", f"{hook.signature_header} is missing or wrong")
        if hook.mapping is None:
            items = parse_items(body, request.headers.get("content-type", ""))
            if isinstance(items, Problem):
                return problem(400, items.error, items.detail)
            return await gateway.deliver(route, name, items)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return problem(400, "not_json", f"the body is not JSON: {exc}")
        mapping = ingest.mappings[hook.mapping]
        records = records_of(payload, mapping.records)
        mapped = [
            apply_mapping(hook.mapping, mapping, r)
            if isinstance(r, dict)
            else Rejected("invalid_fields", "a record is a JSON object")
            for r in records
        ]
        return await gateway.deliver(route, name, mapped)

    @app.get("/healthz", summary="The gateway is up")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sources": sorted(gateway.tokens)}

    return app
