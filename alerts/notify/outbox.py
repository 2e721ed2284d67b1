"""Deliver the Slack outbox in order, per brand, and lose nothing while Slack is away.

slack-sdk's retry handlers already honour Retry-After on 429 and retry 5xx and connection
errors a few times within a call. When a call still fails, the brand's outbox stops at that
notice and is tried again after a backoff (1 s doubling to 60 s); the worker keeps counting
events meanwhile. A notice Slack refuses for good (e.g. channel_not_found) is moved to the
brand's ``outbox-dead`` list with the reason, so it cannot block the ones after it.

A notice is marked done right after Slack accepts it; a crash in between can repeat that one
notice (at least once), never skip one.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerts.incidents.store import IncidentStore, OutboxItem
from alerts.notify import metrics as notify_metrics

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
BATCH = 50
# Slack errors that retrying cannot fix.
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "message_not_found",
        "cant_update_message",
        "user_not_in_channel",
        "invalid_auth",
        "account_inactive",
    }
)


class OutboxSender:
    """Sends each brand's outbox in order (run by the worker holding the evaluation lock)."""

    def __init__(self, store: IncidentStore, slack: AsyncWebClient, brands: list[str]):
        self.store = store
        self.slack = slack
        self.brands = brands
        self.retry_at: dict[str, float] = {}
        self.backoff: dict[str, float] = {}

    async def deliver(self, now: float | None = None) -> int:
        """Send what is due; return how many notices Slack accepted."""
        now = time.time() if now is None else now
        sent = 0
        depth = 0
        # Only the brands with something waiting: two round trips a brand every second cost
        # the evaluator most of a core at 1,000 brands.
        for brand, waiting in (await self.store.outbox_depths(self.brands)).items():
            if not waiting or now < self.retry_at.get(brand, 0.0):
                depth += waiting
                continue
            sent += await self._deliver_brand(brand)
            depth += await self._depth(brand)
        notify_metrics.OUTBOX_DEPTH.set(depth)
        return sent

    async def _depth(self, brand: str) -> int:
        n: Any = await self.store.client.xlen(self.store.of(brand).outbox)
        return int(n)

    async def _deliver_brand(self, brand: str) -> int:
        k = self.store.of(brand)
        client = self.store.client
        entries: Any = await client.xrange(k.outbox, count=BATCH)
        sent = 0
        for entry_id, fields in entries:
            item = OutboxItem.parse(fields)
            try:
                await self._send(brand, item)
            except SlackApiError as exc:
                error = str(exc.response.get("error", "")) if exc.response else ""
                if error not in PERMANENT:
                    self._fail(brand, item, f"Slack said {error or exc}")
                    return sent
                notify_metrics.SLACK_DELIVERIES.labels(item.kind, "refused").inc()
                log.error(
                    "incident %s: Slack refused %s for good: %s", item.incident, item.kind, error
                )
                pipe = client.pipeline(transaction=True)
                pipe.rpush(k.dead, json.dumps({"item": fields["item"], "reason": error}))
                pipe.xdel(k.outbox, entry_id)
                await pipe.execute()
                continue
            except Exception as exc:  # connection errors, timeouts, 5xx after retries
                self._fail(brand, item, f"{type(exc).__name__}: {exc}")
                return sent
            await client.xdel(k.outbox, entry_id)
            notify_metrics.SLACK_DELIVERIES.labels(item.kind, "sent").inc()
            sent += 1
        self.backoff.pop(brand, None)
        self.retry_at.pop(brand, None)
        return sent

    def _fail(self, brand: str, item: OutboxItem, why: str) -> None:
        delay = min(self.backoff.get(brand, BACKOFF_START / 2) * 2, BACKOFF_MAX)
        self.backoff[brand] = delay
        self.retry_at[brand] = time.time() + delay
        notify_metrics.SLACK_DELIVERIES.labels(item.kind, "failed").inc()
        log.warning(
            "incident %s: Slack %s failed (%s); the outbox waits %.0fs and goes on in order",
            item.incident,
            item.kind,
            why,
            delay,
        )

    async def _send(self, brand: str, item: OutboxItem) -> None:
        k = self.store.of(brand)
        client = self.store.client
        if item.kind == "post":
            response = await self.slack.chat_postMessage(
                channel=item.channel, text=item.text, blocks=item.blocks
            )
            ref = {"channel": str(response["channel"]), "ts": str(response["ts"])}
            await client.hset(k.slack, item.incident, json.dumps(ref))
            notify_metrics.ALERTS_SENT.labels(item.rule, item.severity).inc()
            return
        if item.kind == "message":  # not an incident's: a silence ending, a weekly summary
            await self.slack.chat_postMessage(channel=item.channel, text=item.text)
            return
        if item.kind == "ephemeral":
            await self.slack.chat_postEphemeral(
                channel=item.channel, user=item.user or "", text=item.text
            )
            return
        raw: Any = await client.hget(k.slack, item.incident)
        if not raw:
            # Its message was refused for good: say it as a new message instead.
            await self.slack.chat_postMessage(channel=item.channel, text=item.text)
            return
        ref = json.loads(raw)
        if item.kind == "update":
            await self.slack.chat_update(
                channel=ref["channel"], ts=ref["ts"], text=item.text, blocks=item.blocks
            )
        else:
            await self.slack.chat_postMessage(
                channel=ref["channel"],
                thread_ts=ref["ts"],
                text=item.text,
                reply_broadcast=item.broadcast,
            )


__all__ = ["OutboxSender"]
