"""``socialpulse poll``: reads the configured accounts from the platforms' APIs on a schedule
and produces what they answer as events, through the same mappings and checks as files.

Per account, one poll: the pages of its source's request (ingest.poll_sources), each answer's
records mapped, validated and produced to Kafka (a record that cannot be an event goes to the
dead-letter topic with its reason), then, once Kafka has acknowledged them all, the cursor and
the next due time are written to Redis. So a restart neither skips (the cursor moves only
after the events are written) nor repeats more than the poll it interrupted (whose events the
worker counts once: mentions by id, snapshots by their totals).

Rate limits (ingest.rate_limits): each answer's budget headers are kept in Redis per budget
(an X token's endpoint, a Meta app, a business object), shared by every poller process and
account that spends it; a budget spent or used to ``stop_at_usage`` holds back every account
spending it until its reset, ``Retry-After`` or regain time. A failure backs the account off
(doubling, with jitter, to ``backoff_max``), persisted too; a token the platform refuses
(expired, revoked) is logged naming the account, the variable and the fix, and retried only
after ``retry_refused``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import redis
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from ingest.config import FieldMapping, FieldRule, IngestFile
from ingest.event_producer import EventProducer
from ingest.files import checked_items
from ingest.mapping import records_of
from ingest.poll_config import STUB_TOKEN, PollAccount, PollerSettings
from ingest.poll_sources import (
    SOURCES,
    Request,
    event_platform,
    first_request,
    next_cursor,
    next_request,
)
from ingest.rate_limits import (
    Budget,
    Verdict,
    backoff,
    graph_budgets,
    retry_after,
    verdict,
    x_budget,
)
from ingest.validation import Accepted, event_topics
from socialpulse.core.dead_letter import DEAD_LETTERED_AT, DETAIL, REASON, SOURCE_TOPIC
from socialpulse.core.redis_keys import RedisKeys
from streams.config import StreamConfig

log = logging.getLogger("socialpulse.poll")

MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a page of 100 posts with insights is well under 1 MB
MAX_DEAD_LETTER_BYTES = 256 * 1024  # a record's worth; Kafka's default message is 1 MB
MAX_REST = 86400.0  # no rate limit rests an account longer than a day, whatever it says


class PollMetrics:
    """The poller's own series, on its /metrics (docs/metrics.md)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.requests = Counter(
            "socialpulse_poll_requests",
            "API requests by account and outcome (ok, rate_limited, auth_failed, refused, "
            "server_error)",
            ["account", "outcome"],
            registry=registry,
        )
        self.events = Counter(
            "socialpulse_poll_events",
            "Records polled by account and outcome (accepted, rejected: dead-lettered)",
            ["account", "outcome"],
            registry=registry,
        )
        self.up = Gauge(
            "socialpulse_poll_up",
            "1 when the account's last poll succeeded, 0 when it failed",
            ["account"],
            registry=registry,
        )
        self.failures = Gauge(
            "socialpulse_poll_failures",
            "The account's failed polls in a row (its backoff doubles with each)",
            ["account"],
            registry=registry,
        )
        self.last_success = Gauge(
            "socialpulse_poll_last_success_timestamp_seconds",
            "When the account's last poll succeeded (unix seconds)",
            ["account"],
            registry=registry,
        )
        self.budget_used = Gauge(
            "socialpulse_poll_budget_used_ratio",
            "The share of a rate-limit budget used, as the platform's last answer reported it",
            ["budget"],
            registry=registry,
        )


@dataclass
class PollResult:
    """What one account's poll did."""

    account: str
    outcome: str  # ok, waiting (a budget or backoff not yet over), or a failure outcome
    reason: str = ""
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    next_due: float = 0.0


@dataclass
class _State:
    cursor: dict[str, Any] = field(default_factory=dict)
    due: float = 0.0
    failures: int = 0
    outcome: str = ""
    reason: str = ""
    api: str = ""  # the base URL the cursor is of


def account_mapping(mappings: Mapping[str, FieldMapping], account: PollAccount) -> FieldMapping:
    """The account's mapping, its records counted for the account's brand and platform (the
    shipped mappings name an example brand)."""
    mapping = mappings[account.mapping or SOURCES[account.source].mapping]
    fields: dict[str, FieldRule | str] = dict(mapping.fields)
    fields["brand"] = FieldRule(value=account.brand)
    fields["platform"] = FieldRule(value=event_platform(account))
    return mapping.model_copy(update={"fields": fields})


class Poller:
    """Polls the configured accounts when due; state and budgets in Redis, events to Kafka."""

    def __init__(
        self,
        settings: StreamConfig,
        ingest: IngestFile,
        client: httpx.Client,
        producer: EventProducer,
        store: redis.Redis,
        keys: RedisKeys,
        metrics: PollMetrics,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.options: PollerSettings = ingest.pollers
        self.mappings = {
            name: account_mapping(ingest.mappings, account)
            for name, account in self.options.accounts.items()
        }
        self.client = client
        self.producer = producer
        self.store = store
        self.keys = keys
        self.metrics = metrics
        self.environ = os.environ if environ is None else environ
        self.clock = clock
        self.topics = event_topics(settings.pipeline.topics)

    # -- where and with what each account is polled --

    def token(self, account: PollAccount) -> str | None:
        """The account's token from its variable; None: not set (the local stub is polled)."""
        return self.environ.get(account.token_env, "").strip() or None

    def base_url(self, account: PollAccount) -> str:
        """The API the account is polled at: the platform's, or the stub without a token."""
        if self.token(account) is None:
            return self.options.stub_url.rstrip("/")
        spec = SOURCES[account.source]
        return (self.options.graph_url if spec.platform == "graph" else self.options.x_url).rstrip(
            "/"
        )

    def budget_names(self, account: PollAccount) -> list[str]:
        """The budgets a request of the account spends (X: its token's endpoint; Graph: its
        app's, its account's business use cases are read from the answers)."""
        spec = SOURCES[account.source]
        if spec.platform == "x":
            return [f"x:{account.token_env}:{spec.endpoint}"]
        return [f"graph-app:{account.app}"]

    # -- state in Redis --

    def _load(self, name: str) -> _State:
        raw = self.store.hgetall(self.keys.poll_state(name))
        text = {_text(k): _text(v) for k, v in raw.items()}
        try:
            cursor = json.loads(text.get("cursor", "{}"))
        except ValueError:
            cursor = {}  # written by this code only; a broken one starts the source afresh
        return _State(
            cursor if isinstance(cursor, dict) else {},
            float(text.get("due", 0) or 0),
            int(text.get("failures", 0) or 0),
            text.get("outcome", ""),
            text.get("reason", ""),
            text.get("api", ""),
        )

    def _save(self, name: str, state: _State) -> None:
        self.store.hset(
            self.keys.poll_state(name),
            mapping={
                "cursor": json.dumps(state.cursor),
                "due": repr(state.due),
                "failures": state.failures,
                "outcome": state.outcome,
                "reason": state.reason,
                "api": state.api,
            },
        )

    def state(self, name: str) -> dict[str, Any]:
        """An account's persisted state, for ``socialpulse poll --status`` and the tests."""
        s = self._load(name)
        return {
            "cursor": s.cursor,
            "due": s.due,
            "failures": s.failures,
            "outcome": s.outcome,
            "reason": s.reason,
        }

    def _resting(self, names: list[str], account: PollAccount, now: float) -> float:
        """The latest time any budget the account spends rests until (0: none rests)."""
        stored = self.store.hgetall(self.keys.poll_budgets())
        rests = {_text(k): float(v) for k, v in stored.items()}
        wanted = set(names)
        business = f"graph-business:{account.account_id}:"
        until = [
            at
            for budget, at in rests.items()
            if at > now and (budget in wanted or budget.startswith(business))
        ]
        return max(until, default=0.0)

    def _keep_budgets(self, budgets: list[Budget]) -> None:
        now = self.clock()
        for budget in budgets:
            self.metrics.budget_used.labels(budget.name).set(budget.used)
        if any(b.resume_at is not None for b in budgets):
            self.store.hset(
                self.keys.poll_budgets(),
                mapping={
                    b.name: repr(min(b.resume_at, now + MAX_REST))
                    for b in budgets
                    if b.resume_at is not None
                },
            )

    # -- polling --

    def next_due(self) -> float:
        """When the next account is due (unix seconds)."""
        return min(
            (self._load(name).due for name in self.options.accounts), default=self.clock() + 60
        )

    def poll_due(self) -> list[PollResult]:
        """Poll every account whose time has come; the others are left as they are. A poll
        that fails in a way nothing else caught is that account's failure (backed off), never
        the others' or the poller's; only Redis away stops the round (tried again)."""
        results = []
        for name in self.options.accounts:
            if self._load(name).due > self.clock():
                continue
            try:
                results.append(self.poll(name))
            except redis.RedisError:
                raise
            except Exception as exc:  # an answer no rule foresaw: this account backs off
                log.exception("poll %s: failed unexpectedly; backing off", name)
                results.append(self._failed(name, Verdict("server_error", _reason(exc))))
        return results

    def _failed(self, name: str, found: Verdict) -> PollResult:
        state = self._load(name)
        now = self.clock()
        state.failures += 1
        state.outcome, state.reason = found.outcome, found.reason
        state.due = now + backoff(
            state.failures, self.options.backoff_base, self.options.backoff_max
        )
        self._save(name, state)
        self.metrics.up.labels(name).set(0)
        self.metrics.failures.labels(name).set(state.failures)
        return PollResult(name, found.outcome, found.reason, next_due=state.due)

    def poll(self, name: str) -> PollResult:
        """One poll of one account, whatever its due time (budgets still hold it back)."""
        account = self.options.accounts[name]
        state = self._load(name)
        now = self.clock()
        names = self.budget_names(account)
        resting = self._resting(names, account, now)
        if resting > now:
            state.due = resting
            self._save(name, state)
            return PollResult(name, "waiting", "a rate-limit budget rests", next_due=resting)
        if self.token(account) is None and not self.options.stub_without_token:
            found = Verdict(
                "auth_failed", f"{account.token_env} is not set (and stub_without_token is off)"
            )
            state.due = now + self.options.retry_refused
            state.outcome, state.reason = found.outcome, found.reason
            self._save(name, state)
            self.metrics.up.labels(name).set(0)
            self._tell(name, account, found, self.options.retry_refused)
            return PollResult(name, found.outcome, found.reason, next_due=state.due)
        api = self.base_url(account)
        if state.api and state.api != api:
            # Another API (the stub, then the platform): its ids and tokens mean nothing here.
            state.cursor = {}
        state.api = api
        result = PollResult(name, "ok")
        request: Request | None = first_request(
            account, state.cursor, now, self.options.graph_version
        )
        first = request
        bodies: list[dict[str, Any]] = []
        failure: tuple[Verdict, float | None] | None = None
        for _ in range(account.max_pages):
            if request is None:
                break
            answer = self._get(account, request, names)
            result.requests += 1
            self.metrics.requests.labels(name, answer[0].outcome).inc()
            if answer[0].outcome != "ok":
                failure = (answer[0], answer[2])
                break
            body = answer[1]
            self._produce(name, account, body, result)
            bodies.append(body)
            request = next_request(account, request, body)
        try:
            self.producer.flush(float(self.options.request_timeout))
        except KafkaError as exc:  # not acknowledged in time: nothing of this poll counts
            self.producer.errors.append(exc)
        if self.producer.errors:
            errors, self.producer.errors = self.producer.errors, []
            failure = (Verdict("server_error", f"Kafka did not take the events: {errors[0]}"), None)
            bodies = []  # nothing of this poll counts as read: the cursor stays
        assert first is not None
        if bodies:
            state.cursor = next_cursor(account, state.cursor, first, bodies, request, now)
        if failure is None:
            state.failures, state.outcome, state.reason = 0, "ok", ""
            state.due = now + account.every
            self.metrics.up.labels(name).set(1)
            self.metrics.last_success.labels(name).set(now)
        else:
            verdict_, resume = failure
            state.failures += 1
            state.outcome, state.reason = verdict_.outcome, verdict_.reason
            state.due = self._retry_at(account, verdict_, resume, state.failures, now)
            if verdict_.outcome == "refused" and account.source == "x_mentions" and state.cursor:
                # Recent search refuses a since_id or next_token it no longer serves (older
                # than its 7 days): the search starts afresh, soon, not in an hour.
                state.cursor = {}
                state.reason += "; the search's cursor is dropped and it starts afresh"
                state.due = now + backoff(
                    state.failures, self.options.backoff_base, self.options.backoff_max
                )
            self.metrics.up.labels(name).set(0)
            result.outcome, result.reason = verdict_.outcome, state.reason
            self._tell(name, account, verdict_, state.due - now)
        self.metrics.failures.labels(name).set(state.failures)
        self._save(name, state)
        result.next_due = state.due
        return result

    def _retry_at(
        self, account: PollAccount, found: Verdict, resume: float | None, failures: int, now: float
    ) -> float:
        if found.outcome in ("auth_failed", "refused"):
            return now + self.options.retry_refused
        waited = now + backoff(failures, self.options.backoff_base, self.options.backoff_max)
        if found.outcome == "rate_limited":
            # The platform's own word (Retry-After, a budget's reset) wins; else back off.
            return resume if resume is not None and resume > now else waited
        return waited

    def _tell(self, name: str, account: PollAccount, found: Verdict, wait: float) -> None:
        if found.outcome == "auth_failed":
            log.error(
                "poll %s: the platform refused the token in %s (%s): make a new token for the "
                "account (docs/ingest.md, Pollers), set %s and restart the poller; retrying in "
                "%.0f s",
                name,
                account.token_env,
                found.reason,
                account.token_env,
                wait,
            )
        elif found.outcome == "refused":
            log.error(
                "poll %s: the request was refused (%s): check account_id %r and the token's "
                "permissions in pollers.accounts.%s of config/ingest.yaml; retrying in %.0f s",
                name,
                found.reason,
                account.account_id,
                name,
                wait,
            )
        else:
            log.warning(
                "poll %s: %s (%s); next try in %.0f s", name, found.outcome, found.reason, wait
            )

    def _get(
        self, account: PollAccount, request: Request, names: list[str]
    ) -> tuple[Verdict, dict[str, Any], float | None]:
        """Send one request: what it means, its body (an object; {} when it is not one), and
        when a rate limit says to come back."""
        spec = SOURCES[account.source]
        token = self.token(account) or STUB_TOKEN
        try:
            with self.client.stream(
                "GET",
                self.base_url(account) + request.path,
                params=request.params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=float(self.options.request_timeout),
            ) as response:
                raw = _read_at_most(response, MAX_ANSWER_BYTES)
        except httpx.HTTPError as exc:  # refused, reset, timed out: the platform is away
            return Verdict("server_error", _reason(exc)), {}, None
        now = self.clock()
        if raw is None:
            return Verdict("server_error", f"an answer over {MAX_ANSWER_BYTES} bytes"), {}, None
        try:
            body = orjson.loads(raw)  # refuses nesting past 1,024 levels, as the gateway does
        except orjson.JSONDecodeError:
            body = None
        budgets = (
            [b for b in [x_budget(response.headers, names[0])] if b is not None]
            if spec.platform == "x"
            else graph_budgets(
                response.headers, account.app, now, self.options.stop_at_usage, 300.0
            )
        )
        self._keep_budgets(budgets)
        found = verdict(spec.platform, response.status_code, body)
        if found.outcome == "ok" and not isinstance(body, dict):
            found = Verdict(
                "server_error", f"HTTP {response.status_code} with a body that is not a JSON object"
            )
        resume = retry_after(response.headers, now)
        if resume is None:
            resume = max((b.resume_at for b in budgets if b.resume_at), default=None)
        if resume is not None:
            resume = min(resume, now + MAX_REST)  # a platform's word, within reason
        return found, body if isinstance(body, dict) else {}, resume

    def _produce(
        self, name: str, account: PollAccount, body: dict[str, Any], result: PollResult
    ) -> None:
        mapping = (account.mapping or SOURCES[account.source].mapping, self.mappings[name])
        now = self.clock()
        for index, checked in checked_items(body, "json", self.settings, mapping, now):
            if isinstance(checked, Accepted):
                self.producer.send(self.topics[checked.type], checked.body)
                result.accepted += 1
                self.metrics.events.labels(name, "accepted").inc()
                continue
            result.rejected += 1
            self.metrics.events.labels(name, "rejected").inc()
            value = orjson.dumps(_record_at(body, mapping[1].records, index), default=str)
            if len(value) > MAX_DEAD_LETTER_BYTES:  # a whole page that failed: its start
                value = orjson.dumps(
                    {
                        "truncated_from_bytes": len(value),
                        "start": value[:4096].decode("utf-8", "replace"),
                    }
                )
            self.producer.producer.send(
                self.settings.pipeline.topics.dead_letter,
                key=account.brand.encode(),
                value=value,
                headers=[
                    (REASON, checked.reason.encode()),
                    (DETAIL, checked.detail.encode("utf-8", "replace")),
                    (SOURCE_TOPIC, f"poll:{name}".encode()),
                    (DEAD_LETTERED_AT, repr(now).encode()),
                ],
            ).add_errback(self.producer.errors.append)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
    """The answer's body, or None once it passes ``limit`` bytes (read no further)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record_at(body: dict[str, Any], path: str, index: int | None) -> Any:
    if index is None:
        return body
    found = records_of(body, path)
    return found[index] if 0 <= index < len(found) else body
