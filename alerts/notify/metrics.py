"""The notification stage's metrics: Slack deliveries of the outbox, its depth, alerts
posted, and the requests of the button endpoint."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    Counter,
    Gauge,
)

ALERTS_SENT = Counter(
    "socialpulse_alerts_sent_total", "Alerts posted to Slack.", ["rule", "severity"]
)


SLACK_DELIVERIES = Counter(
    "socialpulse_slack_deliveries_total",
    "Slack calls of the outbox by kind (post, update, reply, ephemeral, message) and outcome "
    "(sent; failed: retried later; refused: Slack said no for good, kept in outbox-dead).",
    ["kind", "outcome"],
)


OUTBOX_DEPTH = Gauge(
    "socialpulse_slack_outbox_depth", "Slack notices waiting in the outbox (all brands)."
)


INTERACTIONS = Counter(
    "socialpulse_slack_interactions_total",
    "Requests to the Slack interactivity endpoint by outcome (accepted, unsigned, forged, "
    "stale: timestamp over 5 minutes away, replayed: signature already used, not_responder, "
    "bad_request, ignored, too_large, unavailable: Redis down, answered 503; refused: a slash "
    "command that could not be done as asked, told why).",
    ["outcome"],
)


SLACK_KINDS = ("post", "update", "reply", "ephemeral", "message")


SLACK_OUTCOMES = ("sent", "failed", "refused")


INTERACTION_OUTCOMES = (
    "accepted",
    "unsigned",
    "forged",
    "stale",
    "replayed",
    "not_responder",
    "bad_request",
    "ignored",
    "too_large",
    "unavailable",
    "refused",
)


def initialize_label_sets(rules: Sequence[tuple[str, str]]) -> None:
    """Every Slack outcome, button outcome and rule's alert counter at 0 (``rules``: their names
    and severities)."""
    for kind in SLACK_KINDS:
        for outcome in SLACK_OUTCOMES:
            SLACK_DELIVERIES.labels(kind, outcome)
    for outcome in INTERACTION_OUTCOMES:
        INTERACTIONS.labels(outcome)
    for name, severity in rules:
        ALERTS_SENT.labels(name, severity)
