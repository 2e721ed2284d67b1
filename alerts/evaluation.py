"""One evaluation round of the negative-spike rule: read windows, decide, claim, notify.

Runs every ``negative_spike.evaluate_every`` in each worker; the Redis claim makes the
notification happen once however many workers evaluate.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from alerts.firing_state import FiringState
from alerts.negative_spike import RULE, SpikeFinding, decide
from alerts.slack_delivery import post_spike
from socialpulse.settings import Settings
from streams.counters import by_counter
from streams.metrics import ALERT_DELIVERY_FAILURES, ALERTS_SENT
from streams.redis_counts import AsyncCountStore

log = logging.getLogger(__name__)


async def evaluate_negative_spikes(
    settings: Settings,
    store: AsyncCountStore,
    state: FiringState,
    slack: AsyncWebClient,
    now: float | None = None,
) -> list[SpikeFinding]:
    """Evaluate every brand once; return the findings that were notified in this round."""
    rule = settings.alerts.negative_spike
    channel = settings.alerts.slack.channel
    notified: list[SpikeFinding] = []
    for brand in settings.brands.brands:
        counts = await store.window(brand.id, rule.window, now)
        negative = {p: int(n) for p, n in by_counter(counts, "mentions_negative").items()}
        mentions = {p: int(n) for p, n in by_counter(counts, "mentions").items()}
        decision = decide(
            brand.id,
            brand.name,
            negative,
            mentions,
            brand.platforms,
            rule.threshold,
            rule.window,
            rule.severity,
        )
        await state.release(RULE, brand.id, decision.under)
        for finding in decision.over:
            if not await state.claim(RULE, brand.id, finding.platform):
                continue  # already notified (by this or another worker) while it holds
            try:
                ts = await post_spike(slack, channel, finding)
            except Exception as exc:
                # Give the claim back so the next round tries again: an alert is never dropped.
                await state.release(RULE, brand.id, [finding.platform])
                ALERT_DELIVERY_FAILURES.labels(RULE).inc()
                log.error(
                    "alert %s %s/%s: Slack post failed, will retry: %s",
                    RULE,
                    brand.id,
                    finding.platform,
                    exc,
                )
                continue
            ALERTS_SENT.labels(RULE, finding.severity).inc()
            notified.append(finding)
            log.warning(
                "alert %s fired for %s/%s: %d negative mentions (threshold %d), Slack ts %s",
                RULE,
                brand.id,
                finding.platform,
                finding.negative,
                finding.threshold,
                ts,
            )
    return notified
