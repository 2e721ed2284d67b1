"""Post alerts to Slack with slack-sdk: Block Kit message building and the Web API client.

With ``SLACK_BOT_TOKEN`` set, messages go to Slack; without it, to the project's local Slack
Web API stub (``alerts.yaml: slack.stub_url``), through the very same client code.
"""

from __future__ import annotations

import os
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from alerts.detector import AlertEvent
from socialpulse.config_types import format_duration
from socialpulse.settings import SlackSettings

TOKEN_ENV = "SLACK_BOT_TOKEN"
# The stub checks that a bearer token is sent, as Slack does; this one is not a secret.
STUB_TOKEN = "xoxb-socialpulse-local-stub"


def slack_client(settings: SlackSettings, environ: dict[str, str] | None = None) -> AsyncWebClient:
    """A Web API client for real Slack (token from the environment) or for the local stub."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    handlers = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),  # honours Retry-After on 429
        AsyncServerErrorRetryHandler(max_retry_count=3),
        AsyncConnectionErrorRetryHandler(max_retry_count=3),
    ]
    if token:
        return AsyncWebClient(token=token, retry_handlers=handlers, timeout=10)
    return AsyncWebClient(
        token=STUB_TOKEN, base_url=settings.stub_url, retry_handlers=handlers, timeout=10
    )


def uses_stub(environ: dict[str, str] | None = None) -> bool:
    """True when no Slack token is configured, so messages go to the local stub."""
    env = os.environ if environ is None else environ
    return not env.get(TOKEN_ENV, "").strip()


KIND_TITLE = {
    "threshold": "over its threshold",
    "percent_change": "changed against its baseline",
    "deviation": "far from its baseline",
    "negative_spike": "negative mention spike",
    "rate_of_change": "changing fast",
    "absence": "no data",
}


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.3g}"


def describe(event: AlertEvent) -> str:
    """One line on what the rule saw: value, baseline and score in the rule's terms."""
    window = format_duration(event.window)
    line = f"{event.kpi} {_number(event.value)} in the last {window}"
    if event.kind == "threshold":
        return f"{line} (threshold rule {event.rule})"
    if event.kind == "absence":
        return f"no {event.kpi} in the last {window}; usually {_number(event.baseline)}"
    score = ""
    if event.score is not None:
        unit = "%" if event.kind in ("percent_change", "rate_of_change") else " spreads"
        score = f", {event.score:+.1f}{unit}"
    return f"{line}, baseline {_number(event.baseline)}{score}"


def alert_message(event: AlertEvent, brand_name: str) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks for a firing."""
    title = f"{event.kpi} {KIND_TITLE[event.kind]}"
    text = (
        f"[{event.severity.upper()}] {brand_name} ({event.brand}) on {event.platform}: "
        f"{describe(event)}"
    )
    blocks = [
        HeaderBlock(text=f"{brand_name} on {event.platform}: {title}"[:150]),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Severity*\n{event.severity}"),
                MarkdownTextObject(text=f"*Brand*\n{brand_name} (`{event.brand}`)"),
                MarkdownTextObject(text=f"*Platform*\n{event.platform}"),
                MarkdownTextObject(
                    text=f"*{event.kpi} ({format_duration(event.window)})*\n{_number(event.value)}"
                ),
                MarkdownTextObject(text=f"*Baseline*\n{_number(event.baseline)}"),
                MarkdownTextObject(
                    text=f"*Holding since*\n<!date^{int(event.since)}^{{time}}|{int(event.since)}>"
                ),
            ]
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"SocialPulse rule `{event.rule}` ({event.kind}): not repeated while it "
                    "holds; a reply in this thread says when it clears."
                )
            ]
        ),
    ]
    return text, [block.to_dict() for block in blocks]


def clear_message(event: AlertEvent, brand_name: str) -> str:
    """Text posted in the firing's thread when the rule clears."""
    lasted = format_duration(max(int(event.at - (event.fired_at or event.at)), 1))
    return (
        f"Cleared: {brand_name} ({event.brand}) on {event.platform}, rule {event.rule}: "
        f"{describe(event)}; fired for {lasted}"
    )


async def post_event(
    client: AsyncWebClient, channel: str, event: AlertEvent, brand_name: str, thread: str | None
) -> str:
    """Post a firing (or a clearing, in the firing's thread); return the message ts."""
    if event.event == "fired":
        text, blocks = alert_message(event, brand_name)
        response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    else:
        response = await client.chat_postMessage(
            channel=channel, text=clear_message(event, brand_name), thread_ts=thread
        )
    return str(response["ts"])
