"""Open incidents by brand, state and severity on /metrics, read from Redis at scrape time.

Every combination of a configured brand, an open state and a severity has a sample (0 when
none), so a board's "open incidents" shows 0, not "no data", on a quiet day. Like the rolling
counts, a brand's values are exported by the worker that owns its partition
(socialpulse.core.brand_partitions; boards take ``max()`` across workers).
"""

from __future__ import annotations

import json
import logging
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

OPEN_STATES = ("triggered", "acknowledged", "snoozed")


class IncidentCounts:
    """``socialpulse_incidents{brand, state, severity}``: open incidents now, a source of
    /metrics families (socialpulse.core.metrics_server: nine samples a brand, rendered fast).
    Of the brands ``brands()`` gives at each scrape (the worker's share of them)."""

    def __init__(self, brands: Callable[[], Sequence[str]], keys: RedisKeys, client: redis.Redis):
        self.brands = brands
        self.client = client
        self.keys = keys

    def __call__(self) -> Iterator[Family]:
        """Two Redis round trips: the open incidents' ids, then the incidents."""
        brands = self.brands()
        try:
            pipe = self.client.pipeline(transaction=False)
            for brand in brands:
                pipe.hvals(IncidentKeys(self.keys, brand).open)
            ids: list[Any] = pipe.execute()
            pipe = self.client.pipeline(transaction=False)
            for brand, brand_ids in zip(brands, ids, strict=True):
                for incident_id in brand_ids:
                    pipe.get(IncidentKeys(self.keys, brand).incident(incident_id))
            raw: list[Any] = pipe.execute()
        except REDIS_ERRORS as exc:
            KPI_READ_ERRORS.inc()
            log.warning("metrics: cannot read incidents from Redis: %s", exc)
            return
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


def initialize_label_sets(brand_ids: Sequence[str], severities: Iterable[str]) -> None:
    """Every action outcome, and each brand's incidents opened per severity, at 0."""
    for action in INCIDENT_ACTION_NAMES:
        for outcome in ("ok", "refused"):
            INCIDENT_ACTIONS.labels(action, outcome)
    shown = set(severities)
    for brand in brand_ids:
        for severity in shown:
            INCIDENTS_OPENED.labels(brand, severity)


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


INCIDENT_ACTION_NAMES = ("ack", "snooze", "resolve")
