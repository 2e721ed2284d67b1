"""Slack with slack-sdk: the Web API client, and the Block Kit message of an incident.

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
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.web.async_client import AsyncWebClient

from alerts.alert_text import KIND_TITLE, describe, number
from alerts.incidents import Incident, who_text
from alerts.oncall import IncidentSettings
from socialpulse.config_types import format_duration
from socialpulse.settings import SlackSettings
from socialpulse.slack_stub import STUB_TOKEN

TOKEN_ENV = "SLACK_BOT_TOKEN"
# Where the Web API is, with a token: Slack's by default; GovSlack (https://slack-gov.com/api/)
# or an egress proxy set it.
API_URL_ENV = "SOCIALPULSE_SLACK_API_URL"
DEFAULT_API_URL = "https://slack.com/api/"


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
        base_url = env.get(API_URL_ENV, "").strip() or DEFAULT_API_URL
        return AsyncWebClient(token=token, base_url=base_url, retry_handlers=handlers, timeout=10)
    return AsyncWebClient(
        token=STUB_TOKEN, base_url=settings.stub_url, retry_handlers=handlers, timeout=10
    )


def uses_stub(environ: dict[str, str] | None = None) -> bool:
    """True when no Slack token is configured, so messages go to the local stub."""
    env = os.environ if environ is None else environ
    return not env.get(TOKEN_ENV, "").strip()


STATE_LINE = {
    "triggered": ":rotating_light: *Triggered*: nobody has acknowledged it yet",
    "acknowledged": ":eyes: *Acknowledged* by {acked_by}",
    "snoozed": ":zzz: *Snoozed* until {until}",
    "resolved": ":white_check_mark: *Resolved* by {resolved_by}",
}
BOARD_UID = "socialpulse-brand-overview"


def board_link(incident: Incident, grafana_url: str, now: float) -> str:
    """The brand board over the incident's time range (from an hour before it held)."""
    start = int((incident.since - 3600) * 1000)
    end = "now" if incident.open else str(int((incident.resolved_at or now) * 1000))
    return (
        f"{grafana_url.rstrip('/')}/d/{BOARD_UID}?var-brand={incident.brand}"
        f"&var-platform={incident.platform}&from={start}&to={end}"
    )


def incident_message(
    incident: Incident, brand_name: str, policy: IncidentSettings, now: float
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks of an incident's message, as it stands now."""
    title = f"{incident.kpi} {KIND_TITLE[incident.kind]}"
    text = (
        f"[{incident.severity.upper()}] {brand_name} ({incident.brand}) on {incident.platform}: "
        f"{describe(incident)}"
    )
    until = int(incident.snoozed_until or 0)
    state = STATE_LINE[incident.state].format(
        acked_by=who_text(incident.acked_by or "?"),
        until=f"<!date^{until}^{{time}}|{until}>",
        resolved_by=who_text(incident.resolved_by or "?"),
    )
    fields = [
        MarkdownTextObject(text=f"*Severity*\n{incident.severity}"),
        MarkdownTextObject(text=f"*Brand*\n{brand_name} (`{incident.brand}`)"),
        MarkdownTextObject(text=f"*Platform*\n{incident.platform}"),
        MarkdownTextObject(
            text=f"*{incident.kpi} ({format_duration(incident.window)})*\n{number(incident.value)}"
        ),
        MarkdownTextObject(text=f"*Baseline*\n{number(incident.baseline)}"),
        MarkdownTextObject(
            text=f"*Holding since*\n<!date^{int(incident.since)}^{{time}}|{int(incident.since)}>"
        ),
        MarkdownTextObject(text=f"*Firings*\n{incident.firings}"),
        MarkdownTextObject(text=f"*Incident*\n`{incident.id}`"),
    ]
    if incident.context.get("level") is not None:
        fields.insert(
            5, MarkdownTextObject(text=f"*Fires at*\n{number(incident.context['level'])}")
        )
    blocks: list[Any] = [
        HeaderBlock(text=f"{brand_name} on {incident.platform}: {title}"[:150]),
        SectionBlock(fields=fields[:10]),
        SectionBlock(text=MarkdownTextObject(text=state)),
    ]
    why = context_lines(incident.context)
    if why:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(why)[:3000])))
    buttons: list[Any] = []
    if incident.open:
        if incident.state != "acknowledged":
            buttons.append(_button("Acknowledge", "ack", incident.id, style="primary"))
        buttons += [
            _button(f"Snooze {format_duration(d)}", f"snooze_{d}", incident.id)
            for d in policy.snooze_options
        ]
        buttons.append(_button("Resolve", "resolve", incident.id, style="danger"))
    buttons.append(
        ButtonElement(
            text="Open the board",
            action_id="board",
            url=board_link(incident, policy.grafana_url, now),
        )
    )
    blocks.append(ActionsBlock(block_id=f"incident:{incident.id}", elements=buttons))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"SocialPulse rule `{incident.rule}` ({incident.kind}). Firings of the "
                    "same rule, brand and platform join this incident; its thread has every change."
                )
            ]
        )
    )
    return text, [block.to_dict() for block in blocks]


def _button(label: str, action: str, incident_id: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=label, action_id=action, value=incident_id, style=style)


def context_lines(context: dict[str, Any]) -> list[str]:
    """What drove the incident, as recorded when it opened: platforms, top posts by reach,
    rising terms and languages."""
    lines = []
    platforms = context.get("platforms") or {}
    if platforms:
        shown = ", ".join(f"{p} {number(n)}" for p, n in platforms.items())
        lines.append(f"*By platform* ({context.get('platforms_kpi', 'mentions')}): {shown}")
    for post in context.get("posts") or []:
        text = " ".join(str(post["text"]).split())[:200]
        link = f" <{post['url']}|open>" if post.get("url") else ""
        lines.append(
            f"> {text}\n> — {post['author']} on {post['platform']}, reach "
            f"{number(post['reach'])}{link}"
        )
    terms = context.get("terms") or []
    if terms:
        shown = ", ".join(f"{t} {n} (usually {number(e)})" for t, n, e in terms)
        lines.append(f"*Rising terms*: {shown}")
    languages = context.get("languages") or {}
    if languages:
        lines.append("*Languages*: " + ", ".join(f"{k} {v}" for k, v in languages.items()))
    return lines
