"""Slack with slack-sdk: the Web API client, and the Block Kit message of an incident.

With ``SLACK_BOT_TOKEN`` set, messages go to Slack; without it, to the project's local Slack
Web API stub (``alerts.yaml: slack.stub_url``), through the very same client code.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

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
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.web.async_client import AsyncWebClient

from alerts.config import SlackSettings
from alerts.detection.alert_text import KIND_TITLE, describe, number
from alerts.incidents.lifecycle import VERDICT_REASONS, Incident, verdict_text, who_text
from alerts.incidents.oncall import IncidentSettings
from alerts.slack_text import escape, join_lines, link, one_line
from socialpulse.core.config_types import format_duration

TOKEN_ENV = "SLACK_BOT_TOKEN"
# The token sent to the local Slack stub when no Slack token is set; not a secret.
STUB_TOKEN = "xoxb-socialpulse-local-stub"
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
    "silenced": ":mute: *Silenced*: nobody was notified",
    "resolved": ":white_check_mark: *Resolved* by {resolved_by}",
}
BOARD_UID = "socialpulse-brand-overview"
SECTION_CHARS = 3000  # Slack's limit on a section's text
POST_CHARS = 200  # of a post's text, in its quote


def board_link(incident: Incident, grafana_url: str, now: float) -> str:
    """The brand board over the incident's time range (from an hour before it held)."""
    start = int((incident.since - 3600) * 1000)
    end = "now" if incident.open else str(int((incident.resolved_at or now) * 1000))
    # Brand and platform come from events: encoded, they stay one query value each.
    brand, platform = quote(incident.brand, safe=""), quote(incident.platform, safe="")
    return (
        f"{grafana_url.rstrip('/')}/d/{BOARD_UID}?var-brand={brand}"
        f"&var-platform={platform}&from={start}&to={end}"
    )


def incident_message(
    incident: Incident, brand_name: str, policy: IncidentSettings, now: float
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks of an incident's message, as it stands now.

    Both are mrkdwn (the fallback ``text`` too, in notifications and where blocks cannot be
    shown): every name and value in them is escaped (alerts.slack_text), except the header,
    a plain-text object Slack does not parse."""
    title = f"{incident.kpi} {KIND_TITLE[incident.kind]}"
    name, brand, platform = escape(brand_name), escape(incident.brand), escape(incident.platform)
    seen = escape(describe(incident))
    text = f"[{incident.severity.upper()}] {name} ({brand}) on {platform}: {seen}"
    until = int(incident.snoozed_until or 0)
    state = STATE_LINE[incident.state].format(
        acked_by=who_text(incident.acked_by or "?"),
        until=f"<!date^{until}^{{time}}|{until}>",
        resolved_by=who_text(incident.resolved_by or "?"),
    )
    fields = [
        MarkdownTextObject(text=f"*Severity*\n{incident.severity}"),
        MarkdownTextObject(text=f"*Brand*\n{name} (`{brand}`)"),
        MarkdownTextObject(text=f"*Platform*\n{platform}"),
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
    why = join_lines(context_lines(incident.context), SECTION_CHARS)
    if why:
        # verbatim: Slack links only the links written here, not URLs, channel names or
        # mentions it would otherwise find in the posts' (escaped) text.
        blocks.append(SectionBlock(text=MarkdownTextObject(text=why, verbatim=True)))
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
        ActionsBlock(block_id=f"verdict:{incident.id}", elements=verdict_elements(incident))
    )
    notes = []
    if incident.verdict is not None:
        notes.append(
            f"*Verdict*: {verdict_text(incident.verdict, incident.verdict_reason)}, by "
            f"{who_text(incident.verdict_by or '?')}"
        )
    if incident.silenced_by and incident.notified_at is not None:
        held = int(incident.opened_at)
        notes.append(
            f"Silence `{escape(incident.silenced_by)}` held it from "
            f"<!date^{held}^{{time}}|{held}> until it ended with this still firing."
        )
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=n) for n in notes]))
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


def verdict_elements(incident: Incident) -> list[Any]:
    """Was it any use? "Useful", "Not useful", and "Not useful because..." with the reasons
    (a menu whose option values carry the incident: ``<id>|<reason>``). The last one clicked
    stands."""
    reasons = [
        Option(value=f"{incident.id}|{key}", label=text.capitalize())
        for key, text in VERDICT_REASONS.items()
    ]
    return [
        _button("Useful", "verdict_useful", incident.id),
        _button("Not useful", "verdict_not_useful", incident.id),
        StaticSelectElement(
            placeholder="Not useful because...", action_id="verdict_reason", options=reasons
        ),
    ]


def _button(label: str, action: str, incident_id: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=label, action_id=action, value=incident_id, style=style)


def context_lines(context: dict[str, Any]) -> list[str]:
    """What drove the incident, as recorded when it opened: platforms, top posts by reach,
    rising terms and languages, as mrkdwn lines. All of it comes from events, so every value
    is escaped and kept on its own line (alerts.slack_text); a post's URL is a link only when
    it is http(s), and the link shows its own target."""
    lines = []
    platforms = context.get("platforms") or {}
    if platforms:
        shown = ", ".join(f"{one_line(str(p))} {number(n)}" for p, n in platforms.items())
        kpi = one_line(str(context.get("platforms_kpi", "mentions")))
        lines.append(f"*By platform* ({kpi}): {shown}")
    for post in context.get("posts") or []:
        text = one_line(str(post["text"]), POST_CHARS)
        url = link(str(post["url"])) if post.get("url") else ""
        lines.append(
            f"> {text}\n> — {one_line(str(post['author']))} on {one_line(str(post['platform']))}"
            f", reach {number(post['reach'])}" + (f" {url}" if url else "")
        )
    terms = context.get("terms") or []
    if terms:
        shown = ", ".join(f"{one_line(str(t))} {n} (usually {number(e)})" for t, n, e in terms)
        lines.append(f"*Rising terms*: {shown}")
    languages = context.get("languages") or {}
    if languages:
        shown = ", ".join(f"{one_line(str(k))} {v}" for k, v in languages.items())
        lines.append(f"*Languages*: {shown}")
    return lines
