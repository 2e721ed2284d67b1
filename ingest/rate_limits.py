"""What a platform's answer says about polling it again: its rate-limit headers, its errors,
and how long to wait. Pure functions of the status, headers and body.

- X API v2 (docs.x.com, "Rate limits"): every answer carries ``x-rate-limit-limit``,
  ``x-rate-limit-remaining`` and ``x-rate-limit-reset`` (unix seconds) for the token and
  endpoint, over 15-minute windows; a spent budget answers 429 until the reset.
- Meta's Graph API (v25.0, "Rate Limits"): ``X-App-Usage`` (the app's use of its hourly
  budget, ``call_count``, ``total_cputime``, ``total_time`` in percent) and
  ``X-Business-Use-Case-Usage`` (per business object, the same and
  ``estimated_time_to_regain_access`` in minutes); once a budget is spent, errors with codes 4
  (app), 17 (user), 32 (Page), 613, and 80000-80014 (business use cases).
- ``Retry-After`` (seconds or an HTTP date) wins where a server sends it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

Platform = Literal["graph", "x"]
Outcome = Literal["ok", "rate_limited", "auth_failed", "refused", "server_error"]

# Graph's throttling codes (app, user, Page, per-call, business use cases).
GRAPH_THROTTLED = frozenset({4, 17, 32, 613, *range(80000, 80015)})
# Graph's token errors: invalid or expired (190), a session or permission gone (102, 10, 200+).
GRAPH_AUTH = frozenset({190, 102})
GRAPH_PERMISSION = frozenset({10, *range(200, 300)})


@dataclass(frozen=True)
class Budget:
    """One rate-limit budget as an answer reported it: its name, the share used (0-1) and,
    when it is spent or nearly, the time (unix seconds) before which it should not be used."""

    name: str
    used: float
    resume_at: float | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """When ``Retry-After`` allows the next request (unix seconds), or None; a value that is
    neither seconds nor an HTTP date is ignored."""
    raw = _header(headers, "Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return now + int(raw) if _plain_number(raw) else None
    try:
        return parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def x_budget(headers: Mapping[str, str], name: str) -> Budget | None:
    """The X budget an answer reports (None without its headers, or with unreadable ones);
    spent (remaining 0): not before its reset."""
    limit, left, reset = (
        _header(headers, f"x-rate-limit-{part}") for part in ("limit", "remaining", "reset")
    )
    if not all(_plain_number(v) for v in (limit, left, reset)):
        return None
    total, remaining, resets = int(limit or ""), int(left or ""), int(reset or "")
    if total <= 0:
        return None
    used = min(1.0, max(0.0, 1 - remaining / total))
    return Budget(name, used, float(resets) if remaining <= 0 else None)


def _plain_number(text: str | None) -> bool:
    """Whether a header value is a whole number a platform would send: ASCII digits, at most
    12 of them (not a superscript, not 400 digits)."""
    return text is not None and text.isascii() and text.isdigit() and len(text) <= 12


def _percent(usage: Any) -> float:
    if not isinstance(usage, Mapping):
        return 0.0
    values = [usage.get(k) for k in ("call_count", "total_cputime", "total_time")]
    numbers = [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e6
    ]
    return min(1.0, max(numbers, default=0.0) / 100)


def graph_budgets(
    headers: Mapping[str, str], app: str, now: float, stop_at: float, pause: float
) -> list[Budget]:
    """The Graph budgets an answer reports: the app's (``X-App-Usage``, named ``app``) and
    each business object's (``X-Business-Use-Case-Usage``). One used to ``stop_at`` (0-1) or
    more rests until its ``estimated_time_to_regain_access``, else ``pause`` seconds (the
    hourly window's use falls as it rolls on). Unreadable headers report nothing."""
    found: list[Budget] = []

    def rest(used: float, minutes: Any = 0) -> float | None:
        if used < stop_at:
            return None
        number = isinstance(minutes, int | float) and not isinstance(minutes, bool)
        regain = float(minutes) * 60 if number and 0 < minutes < 1e6 else 0.0
        return now + max(regain, pause)

    try:
        app_usage = json.loads(_header(headers, "X-App-Usage") or "null")
    except ValueError:
        app_usage = None
    if isinstance(app_usage, Mapping):
        used = _percent(app_usage)
        found.append(Budget(f"graph-app:{app}", used, rest(used)))
    try:
        business = json.loads(_header(headers, "X-Business-Use-Case-Usage") or "null")
    except ValueError:
        business = None
    if isinstance(business, Mapping):
        for owner, cases in business.items():
            for case in cases if isinstance(cases, list) else []:
                if not isinstance(case, Mapping):
                    continue
                used = _percent(case)
                name = f"graph-business:{owner}:{case.get('type', 'unknown')}"
                regain = case.get("estimated_time_to_regain_access", 0)
                found.append(Budget(name, used, rest(used, regain)))
    return found


@dataclass(frozen=True)
class Verdict:
    """What one answer means for the poll: its outcome and, for a failure, the reason in words."""

    outcome: Outcome
    reason: str = ""


def graph_error(body: Any) -> tuple[int | None, int | None, str]:
    """Graph's error code, subcode and message from an error body (None, None, '' if none)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None, ""
    code, subcode = error.get("code"), error.get("error_subcode")
    return (
        code if isinstance(code, int) else None,
        subcode if isinstance(subcode, int) else None,
        str(error.get("message", ""))[:300],
    )


def verdict(platform: Platform, status: int, body: Any) -> Verdict:
    """Classify an answer: ok; rate_limited (wait, then go on); auth_failed (the token is
    invalid or expired: a person must make a new one); refused (the request or a permission
    is wrong: a person must fix the configuration); server_error (the platform is down or
    erring: back off and retry)."""
    if platform == "graph":
        code, subcode, message = graph_error(body)
        if 200 <= status < 300 and code is None:
            return Verdict("ok")
        if code in GRAPH_THROTTLED or status == 429:
            return Verdict("rate_limited", f"code {code}: {message}" if code else f"HTTP {status}")
        if code in GRAPH_AUTH:
            sub = f", subcode {subcode}" if subcode is not None else ""
            return Verdict("auth_failed", f"code {code}{sub}: {message}")
        if status >= 500 or code in (1, 2):
            return Verdict("server_error", f"HTTP {status}" + (f", code {code}" if code else ""))
        if code in GRAPH_PERMISSION:
            return Verdict("refused", f"code {code}: {message} (the token lacks a permission)")
        return Verdict("refused", f"HTTP {status}, code {code}: {message}")
    if 200 <= status < 300:
        return Verdict("ok")
    detail = ""
    if isinstance(body, Mapping):
        detail = str(body.get("detail") or body.get("title") or "")[:300]
    if status == 429:
        return Verdict("rate_limited", f"HTTP 429: {detail}")
    if status == 401:
        return Verdict("auth_failed", f"HTTP 401: {detail}")
    if status >= 500:
        return Verdict("server_error", f"HTTP {status}")
    return Verdict("refused", f"HTTP {status}: {detail}")


def backoff(failures: int, base: float, cap: float, draw: float | None = None) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling from ``base`` up to
    ``cap``, with jitter (a half to the whole of it; ``draw`` in [0, 1) fixes it) so that
    pollers that failed together do not retry together."""
    step = min(cap, base * 2 ** max(0, failures - 1))
    share = random.random() if draw is None else draw
    return step * (0.5 + share / 2)
