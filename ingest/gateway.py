"""The HTTP ingest gateway: events, Meta webhooks and generic signed webhooks into Kafka.

Routes (the OpenAPI description is served at ``/openapi.json``, browsable at ``/docs``):

- ``POST /v1/events``: one event, a JSON array of events, or NDJSON; bearer token per source.
- ``GET /v1/webhooks/meta``: Meta's subscription handshake; ``POST``: signed notifications.
- ``POST /v1/webhooks/<name>``: a webhook of config/ingest.yaml, HMAC-signed over the body.
- ``GET /healthz`` (200 ``{"status": "ok"}``, 503 ``{"status": "unavailable"}`` until Kafka is
  connected); ``GET /metrics`` (Prometheus).

Every item is validated against the event schemas; valid ones are written to Kafka keyed by
brand with acks=all before the response says "accepted"; invalid ones are listed with their
index, reason and detail. A request never gets a 2xx for events Kafka has not acknowledged.

No client input makes it answer 500: bodies, headers, query strings and webhook payloads that
cannot be read are refused with 400, 401, 413 or 422 and the reason (tests/ingest's property
test throws arbitrary requests at the app to hold this); 429 and 503 say Kafka is slow or gone.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from ingest import meta
from ingest.config import IngestFile
from ingest.gateway_metrics import CountRequests, Metrics
from ingest.json_body import TooManyItems, parse_items, parse_value
from ingest.kafka_writer import Busy, KafkaWriter, NotAcknowledged
from ingest.mapping import apply_mapping, records_of
from ingest.responses import (
    IngestResult,
    ItemError,
    OrjsonResponse,
    Problem,
    TooLarge,
    problem,
    read_body,
)
from ingest.signatures import secret_bytes, valid_signature
from ingest.validation import Accepted, Rejected, capped, json_kind, shown, validate_item
from streams.config import StreamConfig
from streams.events import Interaction, Mention, MetricSnapshot

log = logging.getLogger(__name__)

RETRY_AFTER = "1"  # seconds, for 429 and 503


class EventWriter(Protocol):
    """Where accepted events go (ingest.kafka_writer.KafkaWriter; a fake in unit tests)."""

    in_flight: int

    @property
    def connected(self) -> bool:
        """Whether events can be written now."""
        ...

    def start_in_background(self) -> None:
        """Begin connecting; return at once."""
        ...

    async def stop(self) -> None:
        """Give up waiting, flush within a bound and disconnect."""
        ...

    async def write(self, events: Sequence[Accepted]) -> None:
        """Write and wait for the acknowledgement (Busy, NotAcknowledged)."""
        ...


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


class Gateway:
    """The gateway's state and request logic, behind the FastAPI routes."""

    def __init__(
        self,
        settings: StreamConfig,
        ingest: IngestFile,
        writer: EventWriter,
        environ: Mapping[str, str],
    ):
        self.settings = settings
        self.ingest = ingest
        self.writer = writer
        self.tokens = {s: secret_bytes(t) for s, t in ingest.tokens(environ).items()}
        self.metrics = Metrics()
        self.metrics.in_flight.set_function(lambda: writer.in_flight)
        self.known = settings.strict_known

    def source_of(self, request: Request) -> str | None:
        """The source whose bearer token the request carries, or None."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        # Headers arrive decoded as Latin-1: encoding back gives the bytes sent, whatever they
        # are (compare_digest raises on non-ASCII str).
        given = token.strip().encode("latin-1", "replace")
        found = None
        for source, expected in self.tokens.items():
            # Compare with every token, so the time taken does not tell which one was close.
            if hmac.compare_digest(expected, given):
                found = source
        return found

    def too_many(self, route: str, count: int) -> Response | None:
        """413 when a request holds more items than a batch may, else None."""
        if count <= self.ingest.gateway.max_batch_events:
            return None
        return self.refuse_batch(route, str(count))

    def refuse_batch(self, route: str, count: str) -> Response:
        """413 too_many_events; ``count`` says how many items (or "more than N")."""
        self.metrics.refused.labels(route, "too_many_events").inc()
        limit = self.ingest.gateway.max_batch_events
        return problem(
            413,
            "too_many_events",
            f"{count} items is over the batch limit of {limit}; split the batch",
        )

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
                detail = capped(result.detail)
                errors.append(ItemError(index=index, reason=result.reason, detail=detail))
        return accepted, errors

    async def deliver(
        self, route: str, source: str, items: list[Any], skipped: int = 0
    ) -> Response:
        """Validate, write the valid items to Kafka, and answer with the counts."""
        refused = self.too_many(route, len(items))
        if refused is not None:
            return refused
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
        return OrjsonResponse(result.model_dump(), status)


def create_app(
    settings: StreamConfig,
    ingest: IngestFile,
    writer: EventWriter | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The gateway's ASGI app; on startup it begins connecting ``writer`` (by default one for
    ``settings``) to Kafka in the background, and on shutdown stops it within a bound."""
    import os

    env = dict(os.environ if environ is None else environ)
    options = ingest.gateway
    kafka: EventWriter = writer or KafkaWriter(
        settings.pipeline.kafka,
        settings.pipeline.topics,
        options.max_in_flight,
        float(options.produce_timeout),
    )
    gateway = Gateway(settings, ingest, kafka, env)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Serving before Kafka answers: clients get 503 with Retry-After and /healthz says
        # unavailable, instead of a gateway that cannot start while Kafka is down.
        kafka.start_in_background()
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
        default_response_class=OrjsonResponse,
    )
    app.state.gateway = gateway
    limit = options.max_body_bytes
    schemas: dict[str, type[BaseModel]] = {
        "Mention": Mention,
        "Interaction": Interaction,
        "MetricSnapshot": MetricSnapshot,
    }
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

    async def body_or_problem(request: Request, route: str) -> bytes | Response:
        try:
            return await read_body(request, limit)
        except TooLarge as exc:
            gateway.metrics.refused.labels(route, "too_large").inc()
            return problem(413, "too_large", str(exc))

    def items_or_problem(body: bytes, request: Request, route: str) -> list[Any] | Response:
        # The limit goes in: a body read item by item is not read past it.
        content_type = request.headers.get("content-type", "")
        try:
            items = parse_items(body, content_type, options.max_batch_events)
        except TooManyItems as exc:
            return gateway.refuse_batch(route, f"more than {exc.limit}")
        if isinstance(items, Rejected):
            return problem(400, items.reason, f"the body is {items.detail}")
        return items

    def payload_or_problem(body: bytes) -> Any:
        payload = parse_value(body)
        if isinstance(payload, Rejected):
            return problem(400, payload.reason, f"the body is {payload.detail}")
        return payload

    app.add_middleware(
        CountRequests,
        metrics=gateway.metrics,
        known_routes={
            "/v1/events",
            "/v1/webhooks/meta",
            *(f"/v1/webhooks/{n}" for n in ingest.webhooks),
        },
    )

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
        items = items_or_problem(body, request, "/v1/events")
        if isinstance(items, Response):
            return items
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
        payload = payload_or_problem(body)
        if isinstance(payload, Response):
            return payload
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
            return problem(404, "unknown_webhook", f"{shown(name)} is not a webhook of ingest.yaml")
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
            items = items_or_problem(body, request, route)
            if isinstance(items, Response):
                return items
            return await gateway.deliver(route, name, items)
        payload = payload_or_problem(body)
        if isinstance(payload, Response):
            return payload
        mapping = ingest.mappings[hook.mapping]
        records = records_of(payload, mapping.records)
        refused = gateway.too_many(route, len(records))  # before mapping them all
        if refused is not None:
            return refused
        mapped = [
            apply_mapping(hook.mapping, mapping, r, root=payload)
            if isinstance(r, dict)
            else Rejected("invalid_fields", f"a record is a JSON object, not {json_kind(r)}")
            for r in records
        ]
        return await gateway.deliver(route, name, mapped)

    @app.get(
        "/healthz",
        summary="Whether the gateway can take events: 200 ok, 503 while Kafka is not connected",
        responses={503: {"description": "Not connected to Kafka (yet, or any more)"}},
    )
    async def healthz() -> Response:
        # Nothing more: an unauthenticated probe must not learn which sources exist.
        if kafka.connected:
            return OrjsonResponse({"status": "ok"})
        return OrjsonResponse({"status": "unavailable"}, 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # The text format whatever the Accept header says: prometheus_client's own ASGI app
        # raised on query strings and headers that are not UTF-8.
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
