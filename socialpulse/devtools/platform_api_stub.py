"""A local stand-in for the platform APIs the pollers read, for the demo and the tests when no
token is set: Meta's Graph API v25.0 (Instagram media, Page posts, Page and Instagram account
insights) and X API v2 (a user's posts, recent search).

It serves the documented response shapes (Graph: ``data`` with ``paging.cursors`` and
``paging.next``, insights as one entry per metric with ``values`` of ``{value, end_time}``;
X: ``data``, ``includes.users`` and ``meta`` with ``newest_id``, ``oldest_id``,
``result_count`` and ``next_token``), pages by ``limit``/``after`` (Graph) and ``max_results``
with ``pagination_token`` or ``next_token`` (X), filters recent search by ``since_id``, and
answers with the rate-limit headers: X's ``x-rate-limit-limit``, ``-remaining`` and ``-reset``
per token and endpoint over 15-minute windows (429 once spent), Graph's ``X-App-Usage`` and
``X-Business-Use-Case-Usage`` in percent of an hourly call budget per token (error code 4 once
spent). Errors have each platform's body: Graph ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``, X ``{"title", "detail", "type", "status"}``.

Without data set, any account id has three posts whose counts grow with time and a mention
on recent search every 20 seconds, so a poller shows moving numbers in the demo. For tests
and drills:

- ``PUT /stub/data`` with ``{"<collection>": [records]}`` sets what a collection serves:
  ``graph:<id>/media``, ``graph:<id>/posts``, ``graph:<id>/insights`` (metric entries),
  ``x:users/<id>/tweets``, ``x:search`` (posts, newest first or not), ``x:users`` (the
  authors ``includes.users`` draws from).
- ``POST /stub/faults`` with ``{"path": "/v25.0/123/media", "responses": [{"status": 503},
  {"status": 429, "retry_after": 2}, {"graph_error": 190}, {"delay": 5}, {"raw": "[[[",
  "status": 200, "headers": {"Retry-After": "x"}}]}`` makes the next requests whose path
  starts with ``path`` fail that way, in order (``raw``: that body and those headers as
  they are).
- ``PUT /stub/limits`` with ``{"x": 3, "graph": 10}``: requests per window (X, per token and
  endpoint) and per hour (Graph, per token).
- ``GET /stub/requests``: what was asked (method, path, query, whether a token came; never
  the token).
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import zlib
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

GRAPH_VERSION = "v25.0"
X_WINDOW = 900  # X counts requests in 15-minute windows
GRAPH_WINDOW = 3600  # Graph's call budgets are over a rolling hour
# What a 190 looks like when a long-lived token has expired (code 190, subcode 463).
_GRAPH_ERRORS: dict[int, tuple[int, str, str, int | None]] = {
    190: (
        400,
        "OAuthException",
        "Error validating access token: Session has expired on Sunday, 06-Dec-26 "
        "00:00:00 PST. The current time is Monday, 07-Dec-26 02:00:00 PST.",
        463,
    ),
    4: (403, "OAuthException", "(#4) Application request limit reached", None),
    80002: (
        403,
        "OAuthException",
        "(#80002) There have been too many calls to this Instagram account. Wait a bit and "
        "try again.",
        None,
    ),
    100: (400, "OAuthException", "(#100) Unsupported get request.", 33),
}
_TEXTS = [
    "Loving the new seasonal menu, great service today",
    "Waited 40 minutes and the order was wrong. Not happy.",
    "Anyone tried the oat latte yet?",
    "Best customer support I have had in years!",
    "App keeps crashing at checkout, fix it please",
]


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode()


def _uncursor(text: str) -> int:
    try:
        return max(0, int(base64.urlsafe_b64decode(text.encode()).decode().removeprefix("i:")))
    except (ValueError, UnicodeDecodeError):
        return -1


def _iso(epoch: float, graph: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if graph:  # Graph writes +0000, no colon
        return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class PlatformStub:
    """The stub's state: data set by tests, faults, limits, and the requests received."""

    def __init__(self, started: float | None = None):
        self.started = time.time() if started is None else started
        self.lock = threading.Lock()
        self.data: dict[str, list[Any]] = {}
        self.faults: list[tuple[str, list[dict[str, Any]]]] = []
        self.limits = {"x": 300, "graph": 200}
        self.requests: list[dict[str, Any]] = []
        # (token digest, endpoint) -> (window start, requests in it); Graph: token -> call times
        self.x_used: dict[tuple[int, str], tuple[float, int]] = {}
        self.graph_calls: dict[int, list[float]] = {}

    def fault_for(self, path: str) -> dict[str, Any] | None:
        """The next injected failure for a request to ``path``, if any."""
        with self.lock:
            for prefix, queued in self.faults:
                if path.startswith(prefix) and queued:
                    return queued.pop(0)
            return None

    # -- what the stub serves without data set: moving numbers for the demo --

    def _generated_posts(self, account: str, now: float) -> list[dict[str, Any]]:
        seed = zlib.crc32(account.encode())
        posts = []
        for n, hours in enumerate((1, 5, 26)):
            published = self.started - hours * 3600
            minutes = max(0.0, (now - published) / 60)
            rate = 1 + (seed >> n) % 5
            posts.append(
                {
                    "id": f"{seed % 10**9}{n:03d}",
                    "published": published,
                    "likes": int(minutes * rate / 10),
                    "comments": int(minutes * rate / 60),
                    "shares": int(minutes * rate / 90),
                    "views": int(minutes * rate * 12),
                    "reach": int(minutes * rate * 7),
                }
            )
        return posts

    def collection(self, name: str, now: float) -> list[Any]:
        """What a collection serves: the data set for it, else generated."""
        with self.lock:
            if name in self.data:
                return list(self.data[name])
        kind, _, rest = name.partition(":")
        account = rest.split("/")[1] if rest.startswith("users/") else rest.split("/")[0]
        if name.endswith("/media"):
            return [
                {
                    "id": p["id"],
                    "timestamp": _iso(p["published"], graph=True),
                    "permalink": f"https://www.instagram.com/p/{p['id']}/",
                    "media_product_type": "FEED",
                    "like_count": p["likes"],
                    "comments_count": p["comments"],
                    "insights": {
                        "data": [
                            _metric(p["id"], "views", "lifetime", p["views"]),
                            _metric(p["id"], "reach", "lifetime", p["reach"]),
                            _metric(p["id"], "shares", "lifetime", p["shares"]),
                        ]
                    },
                }
                for p in self._generated_posts(account, now)
            ]
        if name.endswith("/posts"):
            return [
                {
                    "id": f"{account}_{p['id']}",
                    "created_time": _iso(p["published"], graph=True),
                    "shares": {"count": p["shares"]},
                    "reactions": {"data": [], "summary": {"total_count": p["likes"]}},
                    "comments": {"data": [], "summary": {"total_count": p["comments"]}},
                    "insights": {
                        "data": [
                            _metric(p["id"], "post_media_view", "lifetime", p["views"]),
                            _metric(p["id"], "post_impressions_unique", "lifetime", p["reach"]),
                        ]
                    },
                }
                for p in self._generated_posts(account, now)
            ]
        if name.endswith("/insights"):
            day_end = (now // 86400) * 86400 + 8 * 3600  # Graph's day ends at midnight Pacific
            days = [day_end - k * 86400 for k in range(7, 0, -1)]
            seed = zlib.crc32(account.encode())
            return [
                {
                    "name": metric,
                    "period": "day",
                    "title": metric,
                    "id": f"{account}/insights/{metric}/day",
                    "values": [
                        {
                            "value": (seed >> m) % 500 + int(d // 86400) % 97,
                            "end_time": _iso(d, True),
                        }
                        for d in days
                    ],
                }
                for m, metric in enumerate(("page_media_view", "page_impressions_unique"))
            ]
        if kind == "x" and name.endswith("/tweets"):
            return [
                {
                    "id": str(1_860_000_000_000_000_000 + int(p["published"]) * 1000 + n),
                    "created_at": _iso(p["published"]),
                    "text": _TEXTS[n % len(_TEXTS)],
                    "public_metrics": {
                        "retweet_count": p["shares"],
                        "reply_count": p["comments"],
                        "like_count": p["likes"],
                        "quote_count": 0,
                        "bookmark_count": p["shares"] // 2,
                        "impression_count": p["views"],
                    },
                }
                for n, p in enumerate(self._generated_posts(account, now))
            ]
        if name == "x:search":
            first = int(self.started // 20) - 30  # ten minutes before the stub started
            return [
                {
                    "id": str(1_870_000_000_000_000_000 + tick),
                    "created_at": _iso(tick * 20),
                    "text": _TEXTS[tick % len(_TEXTS)],
                    "author_id": str(900 + tick % 7),
                    "lang": "en",
                    "conversation_id": str(1_870_000_000_000_000_000 + tick),
                }
                for tick in range(int(now // 20), first, -1)
            ]
        if name == "x:users":
            return [
                {
                    "id": str(900 + k),
                    "username": f"fan{k}",
                    "public_metrics": {"followers_count": 50 * k},
                }
                for k in range(7)
            ]
        return []

    # -- rate limits --

    def x_budget(self, token: str, endpoint: str, now: float) -> dict[str, str]:
        """Spend one X request of ``token`` on ``endpoint``; the headers to answer with (the
        remaining count goes to 0 and stays there until the window resets)."""
        key = (zlib.crc32(token.encode()), endpoint)
        with self.lock:
            start, used = self.x_used.get(key, (now, 0))
            if now >= start + X_WINDOW:
                start, used = now, 0
            used += 1
            self.x_used[key] = (start, used)
            limit = self.limits["x"]
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - used)),
            "x-rate-limit-reset": str(int(start + X_WINDOW)),
            "_over": "1" if used > limit else "",
        }

    def graph_budget(self, token: str, account: str, now: float) -> dict[str, str]:
        """Spend one Graph call of ``token``; the usage headers (percent of the hour's budget)."""
        key = zlib.crc32(token.encode())
        with self.lock:
            calls = [t for t in self.graph_calls.get(key, []) if t > now - GRAPH_WINDOW]
            calls.append(now)
            self.graph_calls[key] = calls
            limit = self.limits["graph"]
        percent = min(100, round(100 * len(calls) / limit))
        regain = 0 if len(calls) <= limit else max(1, round((calls[0] + GRAPH_WINDOW - now) / 60))
        usage = {"call_count": percent, "total_cputime": percent // 2, "total_time": percent // 2}
        business = {
            account: [{"type": "pages", **usage, "estimated_time_to_regain_access": regain}]
        }
        return {
            "X-App-Usage": json.dumps(usage),
            "X-Business-Use-Case-Usage": json.dumps(business),
            "_over": "1" if len(calls) > limit else "",
        }


def _metric(owner: str, name: str, period: str, value: int) -> dict[str, Any]:
    return {
        "name": name,
        "period": period,
        "values": [{"value": value}],
        "title": name,
        "id": f"{owner}/insights/{name}/{period}",
    }


def _graph_error(code: int) -> tuple[int, dict[str, Any]]:
    status, kind, message, subcode = _GRAPH_ERRORS.get(
        code, (400, "OAuthException", f"(#{code}) stub error", None)
    )
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AStubTraceId"
    return status, {"error": error}


def _x_error(status: int) -> dict[str, Any]:
    titles = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}
    title = titles.get(status, "Service Unavailable" if status >= 500 else "Invalid Request")
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def _page(items: list[Any], start: int, size: int) -> tuple[list[Any], int | None]:
    chunk = items[start : start + size]
    following = start + size if start + size < len(items) else None
    return chunk, following


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        return None
    return int(raw)


def graph_answer(
    stub: PlatformStub, path: str, query: dict[str, str], token: str, now: float
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers for a Graph API GET of ``/v25.0/<id>/<edge>``."""
    parts = path.strip("/").split("/")
    if (
        len(parts) != 3
        or parts[0] != GRAPH_VERSION
        or parts[2] not in ("media", "posts", "insights")
    ):
        status, body = _graph_error(100)
        return status, body, {}
    account, edge = parts[1], parts[2]
    headers = stub.graph_budget(token, account, now)
    if headers.pop("_over"):
        code = 80002 if edge == "media" else 4
        status, body = _graph_error(code)
        return status, body, headers
    items = stub.collection(f"graph:{account}/{edge}", now)
    if edge == "insights":
        since = float(query.get("since", "0") or 0)
        until = float(query.get("until", str(now)) or now)
        wanted = set(query.get("metric", "").split(",")) - {""}
        entries = []
        for entry in items:
            if wanted and entry.get("name") not in wanted:
                continue
            values = [
                v
                for v in entry.get("values", [])
                if since <= _epoch(v.get("end_time", "")) <= until + 86400
            ]
            entries.append({**entry, "values": values})
        return 200, {"data": entries, "paging": {}}, headers
    limit = _int_param(query, "limit", 25, 1, 100)
    start = _uncursor(query["after"]) if "after" in query else 0
    if limit is None or start < 0:
        status, body = _graph_error(100)
        return status, body, headers
    chunk, following = _page(items, start, limit)
    paging: dict[str, Any] = {
        "cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}
    }
    if following is not None:
        rest = {k: v for k, v in query.items() if k != "after"} | {"after": _cursor(following)}
        paging["next"] = f"https://graph.facebook.com{path}?{urlencode(rest)}"
    return 200, {"data": chunk, "paging": paging}, headers


def _epoch(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return -1.0


def x_answer(
    stub: PlatformStub, path: str, query: dict[str, str], token: str, now: float
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers for an X API v2 GET of a user's posts or recent search."""
    parts = path.strip("/").split("/")
    if parts == ["2", "tweets", "search", "recent"]:
        endpoint, name = "search", "x:search"
    elif len(parts) == 4 and parts[:2] == ["2", "users"] and parts[3] == "tweets":
        endpoint, name = "user_tweets", f"x:users/{parts[2]}/tweets"
    else:
        return 404, _x_error(404), {}
    headers = stub.x_budget(token, endpoint, now)
    if headers.pop("_over"):
        return 429, _x_error(429), headers
    if endpoint == "search" and not query.get("query"):
        body = _x_error(400) | {"detail": "The `query` query parameter can not be empty"}
        return 400, body, headers
    size = _int_param(query, "max_results", 10, 5 if endpoint == "user_tweets" else 10, 100)
    token_param = "next_token" if endpoint == "search" else "pagination_token"
    # X's tokens point into the results as they were (older than the page before), so posts
    # arriving meanwhile do not shift the pages: this token is the last id served.
    below = _uncursor(query[token_param]) if token_param in query else None
    if size is None or below == -1:
        body = _x_error(400) | {"detail": "max_results or the pagination token is not valid"}
        return 400, body, headers
    items = sorted(stub.collection(name, now), key=lambda t: int(t["id"]), reverse=True)
    if below is not None:
        items = [t for t in items if int(t["id"]) < below]
    if "since_id" in query:
        since = int(query["since_id"]) if query["since_id"].isdigit() else None
        if since is None:
            return 400, _x_error(400) | {"detail": "since_id is not a post id"}, headers
        items = [t for t in items if int(t["id"]) > since]
    chunk, following = _page(items, 0, size)
    meta: dict[str, Any] = {"result_count": len(chunk)}
    if chunk:
        meta |= {"newest_id": chunk[0]["id"], "oldest_id": chunk[-1]["id"]}
    if following is not None:
        meta["next_token"] = _cursor(int(chunk[-1]["id"]))
    answer: dict[str, Any] = {"meta": meta}
    if chunk:
        answer["data"] = chunk
        authors = {t.get("author_id") for t in chunk}
        users = [u for u in stub.collection("x:users", now) if u.get("id") in authors]
        if "author_id" in query.get("expansions", "") and users:
            answer["includes"] = {"users": users}
    return 200, answer, headers


MAX_BODY = 4 * 1024 * 1024


def _handler(stub: PlatformStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: /stub/requests is the log

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/stub/health":
                self._reply(200, {"ok": True})
                return
            if url.path == "/stub/requests":
                with stub.lock:
                    self._reply(200, {"requests": list(stub.requests)})
                return
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
            token = token or query.pop("access_token", "")
            now = time.time()
            with stub.lock:
                stub.requests.append(
                    {"path": url.path, "query": query, "token": bool(token), "at": now}
                )
            graph = url.path.startswith("/v")
            fault = stub.fault_for(url.path)
            if fault:
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if "graph_error" in fault:
                    status, body = _graph_error(int(fault["graph_error"]))
                    self._reply(status, body)
                    return
                if "raw" in fault:  # any bytes and headers: hostile or broken answers
                    data = str(fault["raw"]).encode()
                    self.send_response(int(fault.get("status", 200)))
                    for name, value in dict(fault.get("headers") or {}).items():
                        self.send_header(str(name), str(value))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                status = int(fault.get("status", 503))
                extra = {}
                if fault.get("retry_after") is not None:
                    extra["Retry-After"] = str(fault["retry_after"])
                body = _graph_error(2)[1] if graph else _x_error(status)
                self._reply(status, body, extra)
                return
            if not token:
                if graph:
                    status, body = _graph_error(190)
                    body["error"] |= {"message": "An active access token must be used"}
                    body["error"].pop("error_subcode", None)
                    self._reply(400, body)
                else:
                    self._reply(401, _x_error(401))
                return
            answer = graph_answer if graph else x_answer
            status, body, headers = answer(stub, url.path, query, token, now)
            self._reply(status, body, headers)

        def _json_body(self) -> Any:
            declared = self.headers.get("Content-Length") or "0"
            if not declared.isdigit() or int(declared) > MAX_BODY:
                return None
            try:
                return json.loads(self.rfile.read(int(declared)) or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None

        def do_PUT(self) -> None:
            path, asked = urlparse(self.path).path, self._json_body()
            if not isinstance(asked, dict):
                self._reply(400, {"ok": False, "error": "bad_request: send a JSON object"})
                return
            if path == "/stub/data":
                if not all(isinstance(v, list) for v in asked.values()):
                    self._reply(400, {"ok": False, "error": "bad_request: collection -> list"})
                    return
                with stub.lock:
                    stub.data.update(asked)
                self._reply(200, {"ok": True, "collections": sorted(asked)})
            elif path == "/stub/limits":
                if not all(
                    k in ("x", "graph") and isinstance(v, int) and v > 0 for k, v in asked.items()
                ):
                    self._reply(400, {"ok": False, "error": "bad_request: x, graph: counts > 0"})
                    return
                with stub.lock:
                    stub.limits.update(asked)
                self._reply(200, {"ok": True, "limits": stub.limits})
            else:
                self._reply(404, {"ok": False, "error": "unknown_path"})

        def do_POST(self) -> None:
            path, asked = urlparse(self.path).path, self._json_body()
            if path != "/stub/faults":
                self._reply(404, {"ok": False, "error": "unknown_path"})
                return
            if (
                not isinstance(asked, dict)
                or not isinstance(asked.get("path"), str)
                or not isinstance(asked.get("responses"), list)
                or not all(isinstance(r, dict) for r in asked["responses"])
            ):
                self._reply(
                    400,
                    {"ok": False, "error": 'bad_request: {"path": "/2/...", "responses": [{}]}'},
                )
                return
            with stub.lock:
                stub.faults.append((asked["path"], list(asked["responses"])))
            self._reply(200, {"ok": True, "faults": len(asked["responses"])})

    return Handler


def make_server(host: str, port: int, stub: PlatformStub | None = None) -> ThreadingHTTPServer:
    """The stub's HTTP server, bound and not yet serving (port 0: any free port)."""
    return ThreadingHTTPServer((host, port), _handler(stub or PlatformStub()))


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m socialpulse.devtools.platform_api_stub --port 9330``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9330)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    print(
        f"platform API stub on http://{args.host}:{args.port} (asked: /stub/requests)", flush=True
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
