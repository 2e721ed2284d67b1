"""Open incidents by brand, state and severity on /metrics, read from Redis at scrape time.

Every combination of a configured brand, an open state and a severity has a sample (0 when
none), so a board's "open incidents" shows 0, not "no data", on a quiet day. Like the rolling
counts, a brand's values are exported by the worker that owns its partition
(socialpulse.core.brand_partitions; boards take ``max()`` across workers).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, get_args

import prometheus_client
import redis

from alerts.detection.rules import Severity
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.exposition import Family
from socialpulse.core.redis_keys import IncidentKeys, RedisKeys
from streams.metrics import KPI_READ_ERRORS

log = logging.getLogger(__name__)

OPEN_STATES = ("triggered", "acknowledged", "snoozed", "silenced")
VERDICT_DAYS = 30  # the useful share is over the incidents of this many days


class IncidentCounts:
    """``socialpulse_incidents{brand, state, severity}``: open incidents now, a source of
    /metrics families (socialpulse.core.metrics_server: nine samples a brand, rendered fast).
    Of the brands ``brands()`` gives at each scrape (the worker's share of them)."""

    def __init__(
        self,
        brands: Callable[[], Sequence[str]],
        keys: RedisKeys,
        client: redis.Redis,
        rules: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ):
        self.brands = brands
        self.client = client
        self.keys = keys
        self.rules = rules  # the configured rules: each brand's verdict counts start at 0
        self.clock = clock

    def __call__(self) -> Iterator[Family]:
        """Three Redis round trips: the open incidents' ids and the last 30 days' verdicts,
        then the incidents and the verdicts' rules."""
        brands = self.brands()
        since = self.clock() - VERDICT_DAYS * 86400
        try:
            pipe = self.client.pipeline(transaction=False)
            for brand in brands:
                pipe.hvals(IncidentKeys(self.keys, brand).open)
                pipe.zrangebyscore(IncidentKeys(self.keys, brand).verdicts, since, "+inf")
            replies: list[Any] = pipe.execute()
            ids, judged = replies[0::2], replies[1::2]
            pipe = self.client.pipeline(transaction=False)
            for brand, brand_ids in zip(brands, ids, strict=True):
                for incident_id in brand_ids:
                    pipe.get(IncidentKeys(self.keys, brand).incident(incident_id))
            for brand, brand_judged in zip(brands, judged, strict=True):
                if brand_judged:
                    pipe.hmget(IncidentKeys(self.keys, brand).verdict_of, brand_judged)
            raw: list[Any] = pipe.execute()
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read incidents from Redis: %s", exc)
            return
        verdicts = raw[len(raw) - sum(1 for j in judged if j) :]
        raw = raw[: len(raw) - len(verdicts)]
        counts: Counter[tuple[str, str, str]] = Counter()
        for item in raw:
            if item:
                incident = json.loads(item)
                counts[(incident["brand"], incident["state"], incident["severity"])] += 1
        family = Family(
            "socialpulse_incidents",
            "Open incidents by state (triggered, acknowledged, snoozed) and severity.",
            "gauge",
            ("brand", "state", "severity"),
        )
        for brand in brands:
            for state in OPEN_STATES:
                for severity in get_args(Severity):
                    family.add((brand, state, severity), counts[(brand, state, severity)])
        yield family
        yield from self._verdicts(brands, judged, verdicts)

    def _verdicts(
        self, brands: Sequence[str], judged: list[Any], fields: list[Any]
    ) -> Iterator[Family]:
        # Per brand, (rule, verdict) -> incidents: one pass over the verdicts.
        given: dict[str, Counter[tuple[str, str]]] = {}
        replies = iter(fields)
        for brand, brand_judged in zip(brands, judged, strict=True):
            if not brand_judged:
                continue
            mine = given[brand] = Counter()
            for value in next(replies):
                if value:
                    rule, verdict, _ = str(value).split("\t", 2)
                    mine[(rule, verdict)] += 1
        counts = Family(
            "socialpulse_alert_verdicts",
            f"Incidents of the last {VERDICT_DAYS} days (by opening time) the team marked useful "
            "or not useful, by the rule that opened them.",
            "gauge",
            ("brand", "rule", "verdict"),
        )
        ratio = Family(
            "socialpulse_alert_useful_ratio",
            f"Of the incidents of the last {VERDICT_DAYS} days with a verdict, the share marked "
            "useful, by the rule that opened them (only where there are verdicts).",
            "gauge",
            ("brand", "rule"),
        )
        for brand in brands:
            mine = given.get(brand, Counter())
            for rule in dict.fromkeys([*self.rules, *(r for r, _ in mine)]):
                useful, useless = mine[(rule, "useful")], mine[(rule, "not_useful")]
                counts.add((brand, rule, "useful"), useful)
                counts.add((brand, rule, "not_useful"), useless)
                if useful + useless:
                    ratio.add((brand, rule), useful / (useful + useless))
        yield counts
        yield ratio


def initialize_label_sets(
    brand_ids: Sequence[str], severities: Iterable[str], rules: Sequence[str] = ()
) -> None:
    """Every action outcome, each brand's incidents opened per severity and silenced firings
    per rule, at 0."""
    for action in INCIDENT_ACTION_NAMES:
        for outcome in ("ok", "refused"):
            INCIDENT_ACTIONS.labels(action, outcome)
    shown = set(severities)
    for brand in brand_ids:
        for severity in shown:
            INCIDENTS_OPENED.labels(brand, severity)
        for rule in rules:
            SILENCED_FIRINGS.labels(brand, rule)


__all__ = ["IncidentCounts"]


INCIDENTS_OPENED = prometheus_client.Counter(
    "socialpulse_incidents_opened_total",
    "Incidents opened, by brand and severity.",
    ["brand", "severity"],
)


INCIDENT_ACTIONS = prometheus_client.Counter(
    "socialpulse_incident_actions_total",
    "Acknowledge/snooze/resolve requests applied (outcome ok) or refused.",
    ["action", "outcome"],
)


SILENCED_FIRINGS = prometheus_client.Counter(
    "socialpulse_alert_silenced_firings_total",
    "Firings a silence kept from notifying (each recorded on its incident's timeline), by "
    "brand and rule.",
    ["brand", "rule"],
)


INCIDENT_ACTION_NAMES = ("ack", "snooze", "resolve", "verdict")
