"""Requests straight into the gateway's ASGI app, with a fake Kafka writer: raw header bytes,
query strings and bodies exactly as a client sends them (no HTTP client normalises them).

An exception out of the app is what uvicorn turns into a 500: :func:`call` lets it propagate,
so a test sees the traceback of the input that caused it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.config import IngestFile, load_ingest
from ingest.gateway import create_app
from ingest.kafka_writer import Busy, NotAcknowledged
from ingest.validation import Accepted
from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home

SETTINGS = load_settings(project_home() / "config")
TOKEN = "listening-" + uuid.uuid4().hex
META_SECRET, VERIFY = "meta-" + uuid.uuid4().hex, "verify-" + uuid.uuid4().hex
EVENTS_SECRET, LISTENING_SECRET = "events-" + uuid.uuid4().hex, "tw-" + uuid.uuid4().hex
IG_ACCOUNT = "17841400000000002"  # acme's Instagram account in the shipped ingest.yaml
ENVIRON = {
    "SOCIALPULSE_INGEST_TOKEN_LISTENING": TOKEN,
    "META_APP_SECRET": META_SECRET,
    "META_VERIFY_TOKEN": VERIFY,
    "SOCIALPULSE_WEBHOOK_SECRET_EVENTS": EVENTS_SECRET,
    "SOCIALPULSE_WEBHOOK_SECRET_LISTENING": LISTENING_SECRET,
}


class FakeWriter:
    """Takes events as Kafka would, or fails as ``fail`` says (Busy, NotAcknowledged)."""

    def __init__(self, connected: bool = True, fail: Exception | None = None):
        self.in_flight = 0
        self.connected = connected
        self.fail = fail
        self.written: list[Accepted] = []

    def start_in_background(self) -> None:
        """Nothing to connect to."""

    def refuse_waiting(self) -> None:
        """Nothing waits."""

    async def stop(self) -> None:
        """Nothing to flush."""

    async def write(self, events: Sequence[Accepted]) -> None:
        """Keep ``events``, or raise ``fail``."""
        if not events:
            return
        if self.fail is not None:
            raise self.fail
        self.written.extend(events)


@dataclass
class Answer:
    """A response: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)


def gateway_app(writer: FakeWriter | None = None, ingest: IngestFile | None = None) -> Any:
    """The gateway's app on the shipped config, with tokens and secrets of this test run."""
    return create_app(
        SETTINGS,
        ingest or load_ingest(SETTINGS.config_dir, SETTINGS.brands),
        writer or FakeWriter(),
        ENVIRON,
    )


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    query: bytes = b"",
    chunk: int = 65536,
) -> Answer:
    """One request into ``app``; the body arrives in pieces of ``chunk`` bytes."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:9320"), *((k.lower(), v) for k, v in headers)],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 9320),
        "state": {},
    }
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
        for n, piece in enumerate(pieces)
    ]
    answer = Answer(0)

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that sent everything waits for the answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
            }
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def run(app: Any, method: str, path: str, **options: Any) -> Answer:
    """:func:`call`, from synchronous code (hypothesis' tests)."""
    return asyncio.run(call(app, method, path, **options))


def bearer(token: str = TOKEN) -> list[tuple[bytes, bytes]]:
    """The Authorization header of a source (``token`` given as text, sent as UTF-8)."""
    return [(b"authorization", b"Bearer " + token.encode("utf-8", "surrogatepass"))]


def meta_signed(body: bytes) -> list[tuple[bytes, bytes]]:
    """X-Hub-Signature-256 of ``body`` with this run's Meta app secret."""
    digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return [(b"x-hub-signature-256", f"sha256={digest}".encode())]


def events_hook_signed(body: bytes) -> list[tuple[bytes, bytes]]:
    """The shipped ``events`` webhook's signature header (hex, no prefix) of ``body``."""
    digest = hmac.new(EVENTS_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return [(b"x-socialpulse-signature", digest.encode())]


def listening_hook_signed(body: bytes) -> list[tuple[bytes, bytes]]:
    """The shipped ``listening`` webhook's signature header (sha256=hex) of ``body``."""
    digest = hmac.new(LISTENING_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return [(b"x-signature-256", f"sha256={digest}".encode())]


def recent(seconds_ago: float = 60) -> str:
    """An ISO time ``seconds_ago`` before now (event times the gateway takes)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def mention(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid mention of acme on x, with ``fields`` over it."""
    base = {
        "type": "mention",
        "id": f"m-{n}",
        "ts": recent(),
        "platform": "x",
        "brand": "acme",
        "author": "jo",
        "text": "love it",
    }
    return base | fields


def order(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid order interaction (value: its revenue), with ``fields`` over it."""
    base = {
        "type": "interaction",
        "id": f"o-{n}",
        "ts": recent(),
        "platform": "instagram",
        "brand": "acme",
        "kind": "order",
        "content_id": "post-9",
        "user_id": "u-1",
        "value": 12.5,
    }
    return base | fields


__all__ = [
    "Answer",
    "Busy",
    "FakeWriter",
    "NotAcknowledged",
    "bearer",
    "call",
    "gateway_app",
    "mention",
    "meta_signed",
    "order",
    "run",
]
