"""The Slack interactivity endpoint: button clicks on incident messages become action requests.

Every request must carry a valid Slack signature made with the signing secret over its exact
body, with a timestamp at most 5 minutes old (slack_sdk's SignatureVerifier); anything else is
refused with 401 and changes nothing. A click by someone who is not a configured responder gets
an ephemeral refusal. Accepted clicks are queued in the brand's ``incident-actions`` stream; the
evaluating worker applies them within a second, updates the message and adds a thread line.

Served by each worker on ``incidents.interactivity`` (127.0.0.1:9311 by default) in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import redis
from slack_sdk.signature import SignatureVerifier

from alerts.incident_store import ActionRequest, IncidentKeys, OutboxItem, brand_of
from socialpulse.connections import REDIS_ERRORS
from socialpulse.settings import ConfigError, Settings
from streams import metrics
from streams.redis_counts import RedisKeys

log = logging.getLogger(__name__)

SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
# The local Slack stub signs its simulated clicks with this; not a secret (like STUB_TOKEN).
STUB_SIGNING_SECRET = "socialpulse-local-stub-signing-secret"
MAX_AGE = 300  # seconds: older requests are replays


class InteractivityError(ConfigError):
    """The endpoint cannot start as configured."""


def signing_secret(environ: dict[str, str] | None = None) -> str:
    """The signing secret: from the environment, or the stub's when no Slack token is set."""
    env = os.environ if environ is None else environ
    secret = env.get(SIGNING_SECRET_ENV, "").strip()
    if secret:
        return secret
    if env.get("SLACK_BOT_TOKEN", "").strip():
        raise InteractivityError(
            f"{SIGNING_SECRET_ENV} is not set: with SLACK_BOT_TOKEN set, Slack button clicks can "
            "only be verified with your Slack app's signing secret (Basic Information > App "
            f"Credentials); export {SIGNING_SECRET_ENV}, or set incidents.interactivity.port: 0"
        )
    return STUB_SIGNING_SECRET


def parse_click(payload: dict[str, Any], snooze_options: list[int]) -> ActionRequest | None:
    """The action request of a block_actions payload, or None when it is not one of ours."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions") or []
    user = (payload.get("user") or {}).get("id")
    if not actions or not user:
        return None
    action = actions[0]
    action_id, incident = str(action.get("action_id", "")), str(action.get("value", ""))
    if not incident or "-" not in incident:
        return None
    if action_id in ("ack", "resolve"):
        return ActionRequest(incident, action_id, str(user), why="from Slack")
    if action_id.startswith("snooze_"):
        seconds = action_id.removeprefix("snooze_")
        if seconds.isdigit() and int(seconds) in snooze_options:
            return ActionRequest(incident, "snooze", str(user), "from Slack", int(seconds))
    return None


class Interactivity:
    """Verifies and queues clicks (the HTTP handler's logic, testable without a socket)."""

    def __init__(self, settings: Settings, client: redis.Redis, secret: str):
        self.settings = settings
        self.client = client
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)
        self.verifier = SignatureVerifier(secret)
        self.policy = settings.alerts.incidents

    def handle(self, body: bytes, headers: dict[str, str], now: float | None = None) -> int:
        """Handle one request; return the HTTP status."""
        now = time.time() if now is None else now
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp or not signature:
            metrics.INTERACTIONS.labels("unsigned").inc()
            return 401
        try:
            age = abs(now - int(timestamp))
        except ValueError:
            metrics.INTERACTIONS.labels("forged").inc()
            return 401
        if age > MAX_AGE:
            metrics.INTERACTIONS.labels("replayed").inc()
            return 401
        if not self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            metrics.INTERACTIONS.labels("forged").inc()
            log.warning("interactivity: refused a request with a wrong signature")
            return 401
        try:
            form = parse_qs(body.decode("utf-8"))
            payload = json.loads(form["payload"][0])
        except (UnicodeDecodeError, KeyError, IndexError, json.JSONDecodeError):
            metrics.INTERACTIONS.labels("bad_request").inc()
            return 400
        request = parse_click(payload, self.policy.snooze_options)
        if request is None:
            metrics.INTERACTIONS.labels("ignored").inc()
            return 200  # e.g. the "Open the board" link button
        brand = brand_of(request.incident)
        if brand not in self.settings.brand_ids:
            metrics.INTERACTIONS.labels("bad_request").inc()
            return 400
        keys = IncidentKeys(self.keys, brand)
        if not self.policy.may_act(request.who):
            metrics.INTERACTIONS.labels("not_responder").inc()
            channel = (payload.get("channel") or {}).get("id") or self.settings.alerts.slack.channel
            refusal = OutboxItem(
                kind="ephemeral",
                incident=request.incident,
                channel=str(channel),
                text="Only the on-call responders (alerts.yaml: incidents.responders) may "
                "acknowledge, snooze or resolve incidents.",
                user=request.who,
            )
            self.client.xadd(keys.outbox, refusal.fields())
            return 200
        self.client.xadd(keys.actions, request.fields())
        metrics.INTERACTIONS.labels("accepted").inc()
        return 200


def serve_interactivity(settings: Settings, client: redis.Redis) -> ThreadingHTTPServer | None:
    """Start the endpoint in a daemon thread (None when its port is 0)."""
    config = settings.alerts.incidents.interactivity
    if not config.port:
        return None
    logic = Interactivity(settings, client, signing_secret())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _status(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            if self.path.split("?")[0] != config.path:
                self._status(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > config.max_body:
                metrics.INTERACTIONS.labels("too_large").inc()
                self._status(413)
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                self._status(logic.handle(body, headers))
            except REDIS_ERRORS as exc:
                log.warning("interactivity: Redis unavailable, click not taken: %s", exc)
                self._status(503)

    server = ThreadingHTTPServer((config.host, config.port), Handler)
    threading.Thread(target=server.serve_forever, name="interactivity", daemon=True).start()
    log.info(
        "interactivity: Slack buttons at http://%s:%d%s", config.host, config.port, config.path
    )
    return server


__all__ = [
    "STUB_SIGNING_SECRET",
    "Interactivity",
    "InteractivityError",
    "parse_click",
    "serve_interactivity",
    "signing_secret",
]
