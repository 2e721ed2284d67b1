"""The Slack interactivity endpoint: button clicks on incident messages become action requests.

A request passes these checks in order; each answer is counted in
``socialpulse_slack_interactions_total{outcome}`` and any refusal says why in its body:

1. the HTTP layer (``socialpulse.core.http_server``): the whole request within ``request_timeout``
   (else 408), at most ``max_connections`` open (else 503), a well-formed Content-Length
   (else 400; these three are not counted, the application never sees them);
2. a Content-Length (411) of at most ``max_body`` (413, too_large), checked before any of the
   body is read;
3. Slack's headers: both present (401 unsigned), an ASCII unix time and ``v0=`` with 64 hex
   digits (401 forged), the timestamp at most 5 minutes from now either way (401 stale);
4. a UTF-8 body (400) whose signature matches (401 forged), by slack_sdk's SignatureVerifier;
5. a signature not seen before (401 replayed): each verified signature is kept in Redis, shared
   by all workers, until its timestamp has left the 5-minute window;
6. a form with one ``payload``: a JSON block_actions object shaped as Slack sends it (400 with
   what is wrong); other interaction types and our link button are ignored (200);
7. an incident of a configured brand (400) and a responder (else an ephemeral refusal, 200).

Accepted clicks are queued in the brand's ``incident-actions`` stream; the evaluating worker
applies them within a second, updates the message and adds a thread line. With Redis down the
answer is 503 (unavailable) and nothing is taken.

Each worker serves it on ``incidents.interactivity`` (127.0.0.1:9311 by default) on an event
loop of its own in a daemon thread; the Redis calls run in that loop's thread pool, so a slow
Redis blocks neither the endpoint nor the worker's stream processing.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from alerts.config import AlertConfig
from alerts.incidents.lifecycle import VERDICT_REASONS
from alerts.incidents.oncall import Interactivity as InteractivityConfig
from alerts.incidents.store import ActionRequest, OutboxItem, brand_of
from alerts.notify import metrics as notify_metrics
from alerts.notify.commands import Answer, SlashCommands, decode_form
from alerts.silences.store import SilenceStore
from socialpulse.core.config import ConfigError
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.http_server import BackgroundServer, HttpLimits, server_config
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys

log = logging.getLogger(__name__)

SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
# The local Slack stub signs its simulated clicks with this; not a secret (like STUB_TOKEN).
STUB_SIGNING_SECRET = "socialpulse-local-stub-signing-secret"
MAX_AGE = 300  # seconds a request's timestamp may be from now, either way
# Workers' clocks differ a little: a kept signature outlives the window by this many seconds,
# so a worker whose clock lags the one that kept it still finds it.
CLOCK_MARGIN = 60
STOP_TIMEOUT = 2.0  # seconds the worker gives the endpoint to stop
# Slack sends one field (payload): more is not Slack.
MAX_FORM_FIELDS = 10

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]+")
_SNOOZE = re.compile(r"snooze_([0-9]{1,9})")  # bounded: int() of thousands of digits raises
_INCIDENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}-[0-9]{1,12}")
_SLACK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BUTTONS = ("ack", "resolve", "verdict_useful", "verdict_not_useful")
_VERDICT_BUTTONS = {"verdict_useful": "useful", "verdict_not_useful": "not_useful"}


class InteractivityError(ConfigError):
    """The endpoint cannot start as configured."""


class MalformedClick(ValueError):
    """A payload that is not shaped as Slack sends one; the message says what is wrong."""


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


def replay_key(prefix: str, signature: str) -> str:
    """Redis key that marks a verified request's signature as used: brand-free and global, like
    ``<prefix>:evaluation-lock``, one key per signature (so any Redis Cluster node may hold
    it)."""
    return f"{prefix}:slack-signature:{signature.removeprefix('v0=')}"


def _json_kind(value: object) -> str:
    kinds = {list: "list", str: "string", type(None): "null", bool: "bool"}
    return kinds.get(type(value), "number")  # json.loads makes only these, int and float


def read_click(payload: object, snooze_options: Sequence[int]) -> ActionRequest | None:
    """The action a decoded payload asks for; None when it is not one of our buttons (another
    interaction type, the "Open the board" link, a snooze length no longer offered). Raises
    MalformedClick, naming the field, for anything Slack would not send."""
    if not isinstance(payload, dict):
        raise MalformedClick(f"payload is a JSON {_json_kind(payload)}, not an object")
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise MalformedClick("payload.type is missing or not a string")
    if kind != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise MalformedClick("payload.actions is not a non-empty list")
    for i, action in enumerate(actions):
        if not isinstance(action, dict):
            raise MalformedClick(f"payload.actions[{i}] is not an object")
    user = payload.get("user")
    who = user.get("id") if isinstance(user, dict) else None
    if not isinstance(who, str) or not _SLACK_ID.fullmatch(who):
        raise MalformedClick("payload.user is not an object with a Slack user id")
    channel = payload.get("channel")
    if channel is not None and not (
        isinstance(channel, dict) and isinstance(channel.get("id", ""), str)
    ):
        raise MalformedClick("payload.channel is not an object with a string id")
    action = actions[0]
    action_id, value = action.get("action_id"), action.get("value")
    if not isinstance(action_id, str):
        raise MalformedClick("payload.actions[0].action_id is missing or not a string")
    if action_id == "verdict_reason":  # the "Not useful because..." menu (a static_select)
        return _reason_pick(action, who)
    if value is not None and not isinstance(value, str):
        raise MalformedClick("payload.actions[0].value is not a string")
    snooze_for: int | None = None
    if action_id.startswith("snooze_"):
        snooze = _SNOOZE.fullmatch(action_id)
        if snooze is None or int(snooze[1]) not in snooze_options:
            return None  # e.g. a length taken out of snooze_options since the message
        snooze_for = int(snooze[1])
    elif action_id not in _BUTTONS:
        return None
    if value is None or not _INCIDENT_ID.fullmatch(value):
        shown = "missing" if value is None else f"{value[:40]!r}"
        raise MalformedClick(
            f"payload.actions[0].value is {shown}, not an incident id (<brand>-<number>)"
        )
    if snooze_for is not None:
        return ActionRequest(value, "snooze", who, "from Slack", snooze_for)
    if action_id in _VERDICT_BUTTONS:
        verdict = _VERDICT_BUTTONS[action_id]
        return ActionRequest(value, "verdict", who, why="from Slack", verdict=verdict)
    return ActionRequest(value, action_id, who, why="from Slack")


def _reason_pick(action: dict[str, object], who: str) -> ActionRequest:
    """A "not useful" verdict with its reason, from the menu's picked option
    (``<incident>|<reason>``)."""
    option = action.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    if not isinstance(value, str):
        raise MalformedClick("payload.actions[0].selected_option.value is missing or not a string")
    incident, _, reason = value.partition("|")
    if not _INCIDENT_ID.fullmatch(incident) or reason not in VERDICT_REASONS:
        raise MalformedClick(
            f"payload.actions[0].selected_option.value {value[:60]!r} is not "
            f"<incident>|<reason> with a reason of {', '.join(VERDICT_REASONS)}"
        )
    return ActionRequest(
        incident, "verdict", who, "from Slack", verdict="not_useful", reason=reason
    )


def parse_click(payload: object, snooze_options: Sequence[int]) -> ActionRequest | None:
    """The action request of any decoded JSON value, or None when it is not a well-formed click
    on one of our buttons; never raises."""
    try:
        return read_click(payload, snooze_options)
    except MalformedClick:
        return None


def form_payload(text: str) -> object:
    """The decoded ``payload`` field of a URL-encoded form body; MalformedClick when there is not
    exactly one or it is not JSON."""
    try:
        form = decode_form(text, MAX_FORM_FIELDS, "Slack sends one: payload")
    except ValueError as exc:
        raise MalformedClick(str(exc)) from None
    values = form.get("payload", [])
    if len(values) != 1:
        raise MalformedClick(
            f"the form has {len(values)} payload fields, not one (Slack sends payload=<JSON>)"
        )
    try:
        return json.loads(values[0])
    except RecursionError:
        raise MalformedClick("payload is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MalformedClick(f"payload is not JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise MalformedClick("payload has a number too long to read") from None


class Interactivity:
    """Verifies and queues clicks: the endpoint's logic, testable without a socket."""

    def __init__(self, settings: AlertConfig, client: redis.Redis, secret: str):
        self.settings = settings
        self.client = client
        self.keys = RedisKeys(settings.pipeline.redis.key_prefix)
        self.verifier = SignatureVerifier(secret)
        self.policy = settings.alerts.incidents
        self.max_body = self.policy.interactivity.max_body
        self.commands = SlashCommands(settings, SilenceStore(client, self.keys))

    def refuse_length(self, headers: Mapping[str, str]) -> Answer | None:
        """411 or 413 (counted) when the request's framing does not bound its body to
        ``max_body``; None when the body may be read."""
        length = headers.get("content-length")
        if length is None or "transfer-encoding" in headers:
            # A chunked body is as long as its sender likes; h11 even takes one beside a
            # Content-Length, so only a Content-Length alone bounds what is read.
            answer = Answer(411, "bad_request", "Content-Length is required (no Transfer-Encoding)")
        elif not _DIGITS.fullmatch(length):
            answer = Answer(400, "bad_request", "Content-Length is not a number of bytes")
        elif len(digits := length.lstrip("0")) > 18 or int(digits or "0") > self.max_body:
            answer = Answer(
                413,
                "too_large",
                f"the body is over {self.max_body} bytes (incidents.interactivity.max_body)",
            )
        else:
            return None
        notify_metrics.INTERACTIONS.labels(answer.outcome).inc()
        return answer

    def handle(self, body: bytes, headers: Mapping[str, str], now: float | None = None) -> Answer:
        """Answer one request whose body has arrived (``headers`` with lower-case names) and
        count it; Redis unavailable: 503, nothing taken."""
        try:
            answer = self._answer(body, headers, time.time() if now is None else now)
        except REDIS_ERRORS as exc:
            log.warning("interactivity: Redis unavailable, click not taken: %s", exc)
            answer = Answer(503, "unavailable", "Redis is unavailable; nothing was taken, retry")
        notify_metrics.INTERACTIONS.labels(answer.outcome).inc()
        return answer

    def handle_command(
        self, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> Answer:
        """Answer one slash command request (signed like clicks; see alerts.notify.commands)
        and count it; Redis unavailable: 503, nothing taken."""
        try:
            verified = self._verified(body, headers, time.time() if now is None else now)
            if isinstance(verified, Answer):
                answer = verified
            else:
                answer = self.commands.answer(verified, time.time() if now is None else now)
        except REDIS_ERRORS as exc:
            log.warning("slash command: Redis unavailable, nothing taken: %s", exc)
            answer = Answer(503, "unavailable", "Redis is unavailable; nothing was taken, retry")
        notify_metrics.INTERACTIONS.labels(answer.outcome).inc()
        return answer

    def _answer(self, body: bytes, headers: Mapping[str, str], now: float) -> Answer:
        verified = self._verified(body, headers, now)
        if isinstance(verified, Answer):
            return verified
        return self._click(verified)

    def _verified(self, body: bytes, headers: Mapping[str, str], now: float) -> Answer | str:
        """The body as text when it is signed by Slack, fresh and not seen before; else the
        refusal."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp or not signature:
            return Answer(
                401, "unsigned", "X-Slack-Request-Timestamp and X-Slack-Signature are required"
            )
        if not _TIMESTAMP.fullmatch(timestamp):
            return Answer(401, "forged", "X-Slack-Request-Timestamp is not a unix time")
        if not _SIGNATURE.fullmatch(signature):
            return Answer(401, "forged", "X-Slack-Signature is not v0= and 64 hex digits")
        if abs(now - int(timestamp)) > MAX_AGE:
            return Answer(
                401,
                "stale",
                "X-Slack-Request-Timestamp is more than 5 minutes from now (an old request, "
                "or a clock that is off)",
            )
        try:
            # slack_sdk signs text: a body that is not UTF-8 cannot be verified (nor sent by
            # Slack, whose forms are URL-encoded ASCII).
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Answer(400, "bad_request", "the body is not UTF-8")
        expected = self.verifier.generate_signature(timestamp=timestamp, body=text)
        if not hmac.compare_digest(str(expected), signature):
            log.warning("interactivity: refused a request with a wrong signature")
            return Answer(401, "forged", "X-Slack-Signature does not match the body")
        if not self._first_use(signature, int(timestamp), now):
            return Answer(401, "replayed", "this request was received before; nothing changed")
        return text

    def _click(self, text: str) -> Answer:
        try:
            payload = form_payload(text)
            request = read_click(payload, self.policy.snooze_options)
        except MalformedClick as exc:
            return Answer(400, "bad_request", str(exc))
        if request is None:
            return Answer(200, "ignored")
        brand = brand_of(request.incident)
        if brand not in self.settings.brand_ids:
            return Answer(400, "bad_request", f"incident {request.incident}: no brand {brand!r}")
        keys = IncidentKeys(self.keys, brand)
        if not self.policy.may_act(request.who):
            assert isinstance(payload, dict)  # read_click returned a request
            channel = payload.get("channel") or {}
            refusal = OutboxItem(
                kind="ephemeral",
                incident=request.incident,
                channel=str(channel.get("id") or self.settings.alerts.slack.channel),
                text="Only the on-call responders (alerts.yaml: incidents.responders) may "
                "acknowledge, snooze, resolve or judge incidents.",
                user=request.who,
            )
            self.client.xadd(keys.outbox, refusal.fields())
            return Answer(200, "not_responder")
        self.client.xadd(keys.actions, request.fields())
        return Answer(200, "accepted")

    def _first_use(self, signature: str, timestamp: int, now: float) -> bool:
        """Mark the signature used (SET NX) until its timestamp has left the window; False when
        it already was. Marked before the click is queued: a failure in between loses that click
        (Slack shows the person an error, they click again) but can never apply it twice."""
        ttl = max(int(timestamp + MAX_AGE - now), 0) + 1 + CLOCK_MARGIN
        key = replay_key(self.keys.prefix, signature)
        return bool(self.client.set(key, timestamp, nx=True, ex=ttl))


def _response(answer: Answer, close: bool = False) -> Response:
    headers = {"retry-after": "1"} if answer.status == 503 else {}
    if close:
        # The body was not read: the connection cannot carry another request.
        headers["connection"] = "close"
    if answer.reply is not None:
        return JSONResponse(answer.reply, status_code=answer.status, headers=headers)
    return PlainTextResponse(answer.reason, status_code=answer.status, headers=headers)


def interactivity_app(
    logic: Interactivity, path: str, commands_path: str | None = None
) -> Starlette:
    """The ASGI app: POST ``path`` (clicks) and ``commands_path`` (slash commands) only (others
    404, other methods 405)."""

    def endpoint(handle: Callable[[bytes, Mapping[str, str]], Answer]) -> Any:
        async def answer(request: Request) -> Response:
            refused = logic.refuse_length(request.headers)
            if refused is not None:
                return _response(refused, close=True)
            body = await request.body()
            # The signature check, decoding and Redis calls are blocking work: off the loop.
            return _response(await run_in_threadpool(handle, body, request.headers))

        return answer

    click, command = endpoint(logic.handle), endpoint(logic.handle_command)
    routes = [Route(path, click, methods=["POST"])]
    if commands_path:
        routes.append(Route(commands_path, command, methods=["POST"]))
    return Starlette(routes=routes)


def http_limits(config: InteractivityConfig) -> HttpLimits:
    """The endpoint's HTTP limits from its config section."""
    return HttpLimits(
        request_timeout=float(config.request_timeout),
        max_connections=config.max_connections,
        # A click's work is one or two Redis calls: a second is plenty to finish on stop.
        shutdown_timeout=1.0,
    )


class ButtonServer:
    """The running endpoint of one worker."""

    def __init__(self, background: BackgroundServer, url: str):
        self.background = background
        self.url = url

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop within ``timeout`` seconds (at least 1): no new connections, requests in progress
        get what is left of it, then are cut. A cut click was queued or not, never half (its
        work is one XADD). Safe to call from any thread, and more than once."""
        # BackgroundServer.stop waits its argument, then forces the end and waits up to 1 s more.
        self.background.stop(max(timeout - 1.0, 0.0))


def serve_interactivity(settings: AlertConfig, client: redis.Redis) -> ButtonServer | None:
    """Start the endpoint in a daemon thread and wait until it listens (None when its port is
    0); InteractivityError when it cannot listen."""
    config = settings.alerts.incidents.interactivity
    if not config.port:
        return None
    logic = Interactivity(settings, client, signing_secret())
    app = interactivity_app(logic, config.path, config.commands_path)
    options = {"lifespan": "off", "server_header": False}
    uvicorn_config = server_config(app, config.host, config.port, http_limits(config), **options)
    try:
        background = BackgroundServer(uvicorn_config, "interactivity").start()
    except RuntimeError as exc:
        raise InteractivityError(
            f"alerts.yaml: incidents.interactivity: {exc}; give each worker its own port "
            "(SOCIALPULSE_INTERACTIVITY_PORT), or port: 0 for none"
        ) from None
    url = f"http://{config.host}:{config.port}{config.path}"
    log.info(
        "interactivity: Slack buttons at %s, slash commands at http://%s:%s%s",
        url,
        config.host,
        config.port,
        config.commands_path,
    )
    return ButtonServer(background, url)


__all__ = [
    "STUB_SIGNING_SECRET",
    "Answer",
    "ButtonServer",
    "Interactivity",
    "InteractivityError",
    "MalformedClick",
    "form_payload",
    "interactivity_app",
    "parse_click",
    "read_click",
    "replay_key",
    "serve_interactivity",
    "signing_secret",
]
