"""Tell the channel once before a silence ends: what it matches, who made it and why, when it
ends, and the silenced incidents that will open then if they still fire.

Run by the evaluating worker each round. Where a silence made in Slack was made, it is told
there; otherwise in each channel its brands' incidents go to (alerts.yaml: incidents.routes).
The notice is marked told (alerts.silences.store.SilenceStore.mark_told) before it is queued
in an outbox, so it comes once whichever worker evaluates: a crash between the two would lose
it, never repeat it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import get_args

from alerts.detection.rules import Severity
from alerts.incidents.lifecycle import Incident, who_text
from alerts.incidents.oncall import IncidentSettings
from alerts.incidents.store import IncidentStore, OutboxItem
from alerts.silences.model import Silence
from alerts.silences.store import SilenceStore
from alerts.slack_text import escape, one_line


def notice_text(silence: Silence, holding: Sequence[Incident]) -> str:
    """The mrkdwn of the notice that ``silence`` ends soon (its comment, from a person, is
    escaped; so are the matchers, which name configured things only)."""
    end = int(silence.end)
    text = (
        f":hourglass_flowing_sand: Silence `{escape(silence.id)}` "
        f"({escape(silence.matchers_text())}) ends <!date^{end}^{{date_short_pretty}} "
        f"{{time}}|{end}>. Made by {who_text(silence.created_by)}: "
        f"{one_line(silence.comment, 200)}"
    )
    still = [i for i in holding if i.state == "silenced" and i.firing_rules]
    if still:
        shown = ", ".join(f"`{escape(i.id)}`" for i in still[:10])
        text += f"\nStill firing under it, and notified when it ends: {shown}."
    else:
        text += "\nNothing is firing under it now."
    if silence.source != "config":
        text += (
            f"\nTo keep it longer, make a new one: `/socialpulse silence "
            f"{escape(silence.matchers_text())} for=2h why=...`"
        )
    return text


def notice_channels(
    silence: Silence, brands: Sequence[str], policy: IncidentSettings, default: str
) -> dict[str, str]:
    """Channel -> the brand whose outbox carries the notice there: where it was made in
    Slack, else every channel its brands' incidents of its severities are routed to."""
    matched = [b for b in brands if not silence.brands or b in silence.brands]
    if not matched:
        return {}
    if silence.channel:
        return {silence.channel: matched[0]}
    channels: dict[str, str] = {}
    for brand in matched:
        for severity in silence.severities or get_args(Severity):
            channels.setdefault(policy.channel_for(brand, severity, default), brand)
    return channels


async def tell_expiring(
    silences: SilenceStore,
    incidents: IncidentStore,
    expiring: Sequence[Silence],
    brands: Sequence[str],
    policy: IncidentSettings,
    default_channel: str,
    now: float,
) -> int:
    """Queue the notice of each silence in ``expiring`` not told yet; return how many were
    queued."""
    queued = 0
    for silence in expiring:
        if not await asyncio.to_thread(silences.mark_told, silence.id, now):
            continue
        holding = [
            incident
            for brand in brands
            if not silence.brands or brand in silence.brands
            for incident in (await incidents.open_incidents(brand)).values()
            if incident.silenced_by == silence.id
        ]
        text = notice_text(silence, holding)
        for channel, brand in notice_channels(silence, brands, policy, default_channel).items():
            item = OutboxItem(kind="message", incident="", channel=channel, text=text)
            await incidents.client.xadd(incidents.of(brand).outbox, item.fields())
            queued += 1
    return queued


__all__ = ["notice_channels", "notice_text", "tell_expiring"]
