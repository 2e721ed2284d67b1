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

from alerts.negative_spike import SpikeFinding
from socialpulse.settings import SlackSettings, format_duration

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


def spike_message(finding: SpikeFinding) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks for a negative-mention spike."""
    window = format_duration(finding.window_seconds)
    share = f"{finding.negative / finding.mentions:.0%}" if finding.mentions else "n/a"
    text = (
        f"[{finding.severity.upper()}] Negative mention spike: {finding.brand_name} "
        f"({finding.brand}) on {finding.platform}: {finding.negative} negative mentions in "
        f"the last {window} (threshold {finding.threshold})"
    )
    blocks = [
        HeaderBlock(text=f"Negative mention spike: {finding.brand_name} on {finding.platform}"),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Severity*\n{finding.severity}"),
                MarkdownTextObject(text=f"*Brand*\n{finding.brand_name} (`{finding.brand}`)"),
                MarkdownTextObject(text=f"*Platform*\n{finding.platform}"),
                MarkdownTextObject(
                    text=f"*Negative mentions ({window})*\n{finding.negative} "
                    f"(threshold {finding.threshold})"
                ),
                MarkdownTextObject(
                    text=f"*Negative share*\n{share} of {finding.mentions} mentions"
                ),
            ]
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="SocialPulse rule `negative_spike`: not repeated while the count stays "
                    "at or "
                    "above the threshold."
                )
            ]
        ),
    ]
    return text, [block.to_dict() for block in blocks]


async def post_spike(client: AsyncWebClient, channel: str, finding: SpikeFinding) -> str:
    """Post the spike alert; return the message ts. Raises SlackApiError or a client error."""
    text, blocks = spike_message(finding)
    response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    return str(response["ts"])
