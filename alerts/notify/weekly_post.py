"""Post each brand's weekly summary (alerts.incidents.weekly_summary) to its channel, once.

Run by the evaluating worker each round. At ``incidents.weekly_summary.day`` and ``at`` the
week before is due; each brand's summary is marked in Redis before it is queued in the brand's
outbox, so it is posted once whichever worker evaluates (a crash in between loses it rather
than posting it twice). A worker that was down at that time posts it when it comes back, within
a day; later than that the week is skipped. A brand with nothing to tell (no incident and no
silence that week) gets no post.

The channel is the one the brand's critical incidents go to (alerts.yaml: incidents.routes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from alerts.config import AlertConfig
from alerts.incidents.lifecycle import Incident
from alerts.incidents.metrics import VERDICT_DAYS
from alerts.incidents.store import IncidentStore, OutboxItem
from alerts.incidents.weekly_summary import WeekSummary, summary_text, week_summary
from alerts.silences.model import Silence
from alerts.silences.store import SilenceStore

LATE_LIMIT = 86400  # a summary more than this late is skipped, not posted days after
BRANDS_PER_ROUND = 20
WEEK = 7 * 86400


async def brand_summary(
    settings: AlertConfig,
    incidents: IncidentStore,
    stored: Sequence[Silence],
    brand: str,
    end: float,
) -> WeekSummary:
    """The brand's summary of the week ending at ``end``, from what Redis holds (``stored``:
    the stored silences, read once for all brands)."""
    config = settings.alerts.incidents.weekly_summary
    floor, least = (config.useful_floor, config.min_verdicts) if config else (0.5, 3)
    start = end - WEEK
    k = incidents.of(brand)
    ids: Any = await incidents.client.zrangebyscore(k.index, end - VERDICT_DAYS * 86400, f"({end}")
    raw: Any = await incidents.client.mget([k.incident(i) for i in ids]) if ids else []
    found = [Incident.from_dict(json.loads(r)) for r in raw if r]
    declared = settings.alerts.silences.declared(start, end)
    by_id = {s.id: s for s in declared} | {s.id: s for s in stored}
    used = [
        s
        for s in by_id.values()
        if (not s.brands or brand in s.brands) and s.starts_at < end and s.end > start
    ]
    used.sort(key=lambda s: (s.starts_at, s.id))
    spec = next(b for b in settings.brands.brands if b.id == brand)
    return week_summary(
        brand,
        spec.name,
        [*spec.platforms, "all"],
        start,
        end,
        found,
        used,
        settings.alerts.budget,
        floor,
        least,
    )


def worth_posting(summary: WeekSummary) -> bool:
    """Whether there is anything to tell: an incident or a silence in the week."""
    return bool(summary.opened or summary.silences)


class WeeklySummaries:
    """Posts the summaries due; remembers the week it has seen done for every brand, so the
    rounds after it read nothing (at 1,000 brands a check a second is not free)."""

    def __init__(self, settings: AlertConfig, incidents: IncidentStore, silences: SilenceStore):
        self.settings = settings
        self.incidents = incidents
        self.silences = silences
        self.done_for: float | None = None  # the week end every brand's summary is marked for

    async def post_due(self, now: float) -> int:
        """Queue the summaries due at ``now`` that were not yet, at most BRANDS_PER_ROUND of
        them (the rest in the next rounds: a round must not stall on 1,000 brands' 30 days
        of incidents); return how many were queued."""
        config = self.settings.alerts.incidents.weekly_summary
        if config is None:
            return 0
        end = config.last_due(now)
        if now - end > LATE_LIMIT or end == self.done_for:
            return 0
        incidents = self.incidents
        brands = self.settings.brand_ids
        pipe = incidents.client.pipeline(transaction=False)
        for brand in brands:
            pipe.hexists(incidents.of(brand).summaries, str(int(end)))
        done: list[Any] = await pipe.execute()
        due = [brand for brand, posted in zip(brands, done, strict=True) if not posted]
        if not due:
            self.done_for = end
            return 0
        stored = await asyncio.to_thread(self.silences.stored)
        queued = 0
        for brand in due[:BRANDS_PER_ROUND]:
            queued += await self._post(brand, end, now, stored)
        return queued

    async def _post(self, brand: str, end: float, now: float, stored: Sequence[Silence]) -> int:
        incidents = self.incidents
        summary = await brand_summary(self.settings, incidents, stored, brand, end)
        key = incidents.of(brand).summaries
        if not await incidents.client.hsetnx(key, str(int(end)), json.dumps({"at": now})):
            return 0  # another evaluator got here first
        await incidents.client.expire(key, 400 * 86400)
        if not worth_posting(summary):
            return 0
        channel = self.settings.alerts.incidents.channel_for(
            brand, "critical", self.settings.alerts.slack.channel
        )
        item = OutboxItem(kind="message", incident="", channel=channel, text=summary_text(summary))
        await incidents.client.xadd(incidents.of(brand).outbox, item.fields())
        return 1


__all__ = ["WeeklySummaries", "brand_summary", "worth_posting"]
