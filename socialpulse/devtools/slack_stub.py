"""A local stand-in for the Slack Web API, for the demo and the tests when no token is set.

It answers ``chat.postMessage`` (also in threads), ``chat.update``, ``chat.postEphemeral`` and
``auth.test`` the way Slack does (JSON with ``ok``; ``not_authed`` without a bearer token;
``channel_not_found`` without a channel; ``message_not_found`` for an update of an unknown ts)
and records every call it accepts. What it received is at ``GET /stub/messages`` (``?channel=``
filters) and in ``<state>/slack-stub/messages.jsonl``.

For tests and drills:

- ``POST /stub/faults`` with ``{"responses": [{"status": 429, "retry_after": 1},
  {"status": 500}, {"delay": 12}], "channel": "#c"}`` makes the next API calls to that channel
  (without ``channel``: to any channel) fail that way, in order (a delay holds the reply past
  the client's timeout); a failed call is not recorded.
- ``POST /stub/click`` with ``{"url": ..., "user": "U1", "action_id": "ack", "value":
  "acme-1", "channel": "#c", "message_ts": "..."}`` sends a block_actions payload to an
  interactivity endpoint as Slack would, signed with the stub's signing secret (``"sign":
  "wrong"`` forges it, ``"age": 600`` backdates its timestamp); it answers with the
  endpoint's status (``"selected": "acme-1|bot_wave"`` picks a menu option instead).
- ``POST /stub/command`` with ``{"url": ..., "user": "U1", "channel": "C1", "text": "silence
  brand=acme for=2h why=launch"}`` sends the ``/socialpulse`` slash command as Slack would
  (its form fields, signed the same way; ``sign`` and ``age`` as for clicks); it answers with
  the endpoint's status and reply.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlparse
from urllib.request import Request, urlopen

from slack_sdk.signature import SignatureVerifier

from alerts.notify.interactivity import STUB_SIGNING_SECRET
from alerts.notify.slack_message import STUB_TOKEN

MAX_BODY = 1024 * 1024


class SlackStub:
    """The stub's state: messages received, kept in memory and appended to a JSONL file."""

    def __init__(self, record_file: Path | None):
        self.record_file = record_file
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        # Injected failures per channel (None: for calls to any channel), so tests sharing the
        # stub fail only their own calls.
        self.faults: dict[str | None, list[dict[str, Any]]] = {}
        self._seq = 0

    def next_fault(self, channel: str | None) -> dict[str, Any] | None:
        """The next injected failure for a call to ``channel``, if any."""
        with self.lock:
            for key in (channel, None):
                queued = self.faults.get(key)
                if queued:
                    return queued.pop(0)
            return None

    def posted(self, channel: str, ts: str | None) -> bool:
        """Whether a message with this ts was posted to the channel."""
        with self.lock:
            return any(
                c["method"] == "chat.postMessage" and c["channel"] == channel and c["ts"] == ts
                for c in self.calls
            )

    def record(self, method: str, body: dict[str, Any], own_token: bool = True) -> dict[str, Any]:
        """Store one accepted API call; return it with the ts Slack would assign. Whether it
        came with the stub's own token or another (a real-looking one) is kept, not the
        token itself."""
        with self.lock:
            self._seq += 1
            # Updates keep their message's ts; posts (and thread replies) get a new one.
            ts = body.get("ts") if method == "chat.update" else None
            ts = ts or f"{int(time.time())}.{self._seq:06d}"
            call = {"method": method, "received_at": time.time(), "ts": ts, **body}
            call["token"] = "stub" if own_token else "other"
            self.calls.append(call)
            if self.record_file:
                with self.record_file.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(call) + "\n")
        return call


def _handler(stub: SlackStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the recorded calls are the log

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/stub/health":
                self._reply(200, {"ok": True})
            elif url.path == "/stub/messages":
                channel = parse_qs(url.query).get("channel", [None])[0]
                with stub.lock:
                    calls = [
                        c for c in stub.calls if channel is None or c.get("channel") == channel
                    ]
                self._reply(200, {"ok": True, "messages": calls})
            else:
                self._reply(404, {"ok": False, "error": "unknown_path"})

        def _body(self, raw: bytes) -> tuple[dict[str, Any], bool]:
            """The call's arguments (JSON or a form), and whether they could be read."""
            if "json" in self.headers.get("Content-Type", ""):
                try:
                    parsed = json.loads(raw or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return {}, False
                return (parsed, True) if isinstance(parsed, dict) else ({}, False)
            try:
                return {k: v[0] for k, v in parse_qs(raw.decode()).items()}, True
            except UnicodeDecodeError:
                return {}, False

        def _drill(self, path: str, raw: bytes) -> None:
            """``/stub/faults``, ``/stub/click`` and ``/stub/command``: a JSON object in; 400
            with the reason for anything else, 502 when the endpoint cannot be reached."""
            try:
                asked = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                asked = None
            if not isinstance(asked, dict):
                self._reply(400, {"ok": False, "error": "bad_request: send a JSON object"})
                return
            if path == "/stub/faults":
                problem = fault_problem(asked)
                if problem:
                    self._reply(400, {"ok": False, "error": f"bad_request: {problem}"})
                    return
                with stub.lock:
                    queued = stub.faults[asked.get("channel")] = list(asked.get("responses", []))
                self._reply(200, {"ok": True, "faults": len(queued)})
                return
            problem = command_problem(asked) if path == "/stub/command" else click_problem(asked)
            if problem:
                self._reply(400, {"ok": False, "error": f"bad_request: {problem}"})
                return
            try:
                if path == "/stub/command":
                    status, reply = command(asked)
                    self._reply(200, {"ok": True, "status": status, "reply": reply})
                    return
                status = click(asked)
            except OSError as exc:
                self._reply(502, {"ok": False, "error": f"endpoint_unreachable: {exc}"})
                return
            self._reply(200, {"ok": True, "status": status})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            method = path.removeprefix("/api/")
            declared = self.headers.get("Content-Length") or "0"
            if not declared.isdigit():
                self._reply(400, {"ok": False, "error": "bad_request: Content-Length"})
                return
            length = int(declared)
            if length > MAX_BODY:
                self._reply(413, {"ok": False, "error": "request_too_large"})
                return
            raw = self.rfile.read(length)
            if path in ("/stub/faults", "/stub/click", "/stub/command"):
                self._drill(path, raw)
                return
            body, readable = self._body(raw)
            fault = stub.next_fault(body.get("channel")) if path.startswith("/api/") else None
            if fault:
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                status = int(fault.get("status", 200))
                data = json.dumps({"ok": False, "error": f"stub_fault_{status}"}).encode()
                self.send_response(status)
                if fault.get("retry_after") is not None:
                    self.send_header("Retry-After", str(fault["retry_after"]))
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._reply(200, {"ok": False, "error": "not_authed"})
                return
            if not readable:
                self._reply(200, {"ok": False, "error": "invalid_json"})
                return
            if method == "auth.test":
                self._reply(
                    200, {"ok": True, "team": "stub", "user": "socialpulse", "bot_id": "BSTUB"}
                )
            elif method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
                if not body.get("channel"):
                    self._reply(200, {"ok": False, "error": "channel_not_found"})
                    return
                if method == "chat.update" and not stub.posted(body["channel"], body.get("ts")):
                    self._reply(200, {"ok": False, "error": "message_not_found"})
                    return
                if method == "chat.postEphemeral" and not body.get("user"):
                    self._reply(200, {"ok": False, "error": "user_not_in_channel"})
                    return
                if not (body.get("text") or body.get("blocks")):
                    self._reply(200, {"ok": False, "error": "no_text"})
                    return
                own = self.headers.get("Authorization", "") == f"Bearer {STUB_TOKEN}"
                call = stub.record(method, body, own)
                self._reply(
                    200,
                    {
                        "ok": True,
                        "channel": body["channel"],
                        "ts": call["ts"],
                        "message": {"text": body.get("text"), "blocks": body.get("blocks")},
                    },
                )
            else:
                self._reply(200, {"ok": False, "error": "unknown_method"})

    return Handler


def fault_problem(asked: dict[str, Any]) -> str | None:
    """What is wrong with a ``/stub/faults`` request, or None."""
    channel, responses = asked.get("channel"), asked.get("responses", [])
    if channel is not None and not isinstance(channel, str):
        return "channel: a channel name such as #c, or leave it out for any channel"
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        return 'responses: a list of objects such as {"status": 500}'
    for n, response in enumerate(responses):
        status, delay = response.get("status", 200), response.get("delay", 0)
        after = response.get("retry_after", 0)
        if not isinstance(status, int) or not 100 <= status <= 599:
            return f"responses[{n}].status: an HTTP status from 100 to 599"
        for name, value in (("delay", delay), ("retry_after", after)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"responses[{n}].{name}: seconds, from 0 to 60"
            if not 0 <= value <= 60:
                return f"responses[{n}].{name}: seconds, from 0 to 60"
    return None


def click_problem(request: dict[str, Any]) -> str | None:
    """What is wrong with a ``/stub/click`` request, or None."""
    url = request.get("url")
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
        return "url: the interactivity endpoint, e.g. http://127.0.0.1:9311/slack/interactivity"
    age = request.get("age", 0)
    if isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age <= 86400:
        return "age: seconds to backdate the timestamp, from 0 to 86400"
    for name in ("user", "action_id", "value", "channel", "message_ts", "selected"):
        if not isinstance(request.get(name, ""), str):
            return f"{name}: a string"
    return None


def click(request: dict[str, Any]) -> int:
    """Send a button click to an interactivity endpoint as Slack does; return its status.
    ``"selected": "<value>"`` picks that option of a menu (a static_select) instead."""
    action: dict[str, Any] = {
        "action_id": request.get("action_id", "ack"),
        "value": request.get("value", ""),
        "type": "button",
    }
    if request.get("selected") is not None:
        action = {
            "action_id": request.get("action_id", "verdict_reason"),
            "type": "static_select",
            "selected_option": {"value": request["selected"]},
        }
    payload = {
        "type": "block_actions",
        "trigger_id": f"{time.time_ns()}.{uuid.uuid4().hex[:8]}.stub",
        "user": {"id": request.get("user", "U0STUB")},
        "channel": {"id": request.get("channel", "")},
        "container": {"message_ts": request.get("message_ts", "")},
        "actions": [action],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return _signed_post(str(request["url"]), body, request)[0]


def command_problem(request: dict[str, Any]) -> str | None:
    """What is wrong with a ``/stub/command`` request, or None."""
    url = request.get("url")
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
        return "url: the slash command endpoint, e.g. http://127.0.0.1:9311/slack/commands"
    age = request.get("age", 0)
    if isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age <= 86400:
        return "age: seconds to backdate the timestamp, from 0 to 86400"
    for name in ("user", "text", "channel", "command"):
        if not isinstance(request.get(name, ""), str):
            return f"{name}: a string"
    return None


def command(request: dict[str, Any]) -> tuple[int, Any]:
    """Send a slash command to an endpoint as Slack does (its form fields, signed); return its
    status and its reply (JSON when it is, else the text)."""
    form = {
        "token": "stub-verification-token",
        "team_id": "T0STUB",
        "team_domain": "stub",
        "channel_id": request.get("channel", "C0STUB"),
        "channel_name": "stub",
        "user_id": request.get("user", "U0STUB"),
        "user_name": "stub",
        "command": request.get("command", "/socialpulse"),
        "text": request.get("text", ""),
        "api_app_id": "A0STUB",
        "response_url": "https://hooks.slack.com/commands/T0STUB/1/stub",
        # Unique, as Slack's are: the same command twice in a second is two requests.
        "trigger_id": f"{time.time_ns()}.{uuid.uuid4().hex[:8]}.stub",
    }
    body = urlencode(form).encode()
    return _signed_post(str(request["url"]), body, request)


def _signed_post(url: str, body: bytes, request: dict[str, Any]) -> tuple[int, Any]:
    timestamp = str(int(time.time() - float(request.get("age", 0))))
    signature = SignatureVerifier(STUB_SIGNING_SECRET).generate_signature(
        timestamp=timestamp, body=body
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if request.get("sign", True):
        if request.get("sign") == "wrong":
            signature = "v0=" + "0" * 64
        headers |= {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": str(signature)}
    try:
        post = Request(url, data=body, headers=headers, method="POST")
        with urlopen(post, timeout=10) as response:
            status, raw = int(response.status), response.read()
    except HTTPError as exc:
        status, raw = int(exc.code), exc.read()
    try:
        return status, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw.decode("utf-8", "replace")


def make_server(host: str, port: int, record_file: Path | None) -> ThreadingHTTPServer:
    """The stub's HTTP server, bound and not yet serving (port 0: any free port)."""
    if record_file:
        record_file.parent.mkdir(parents=True, exist_ok=True)
    return ThreadingHTTPServer((host, port), _handler(SlackStub(record_file)))


def serve(host: str, port: int, record_file: Path | None) -> None:
    """Serve the stub until interrupted."""
    server = make_server(host, port, record_file)
    print(f"Slack stub on http://{host}:{port}/api/ (received: /stub/messages)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m socialpulse.devtools.slack_stub --port 9310 --record FILE``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9310)
    parser.add_argument("--record", type=Path, default=None)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.record)


if __name__ == "__main__":
    main()
