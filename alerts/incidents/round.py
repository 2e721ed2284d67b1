"""The incident round: alert events and people's actions in, incidents and Slack notices out.

Run by the worker that holds the evaluation lock, right after each evaluation (and every
second for actions), so every change is applied once, in order, whatever the number of
workers. The lifecycle itself is pure (alerts.incidents.lifecycle); this module reads and
writes Redis (alerts.incidents.store) and renders the notices into the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alerts.config import AlertConfig
from alerts.detection.engine import Values
from alerts.detection.rule_check import AlertEvent
from alerts.incidents import metrics as incident_metrics
from alerts.incidents.context import incident_context
from alerts.incidents.lifecycle import (
    SYSTEM,
    Incident,
    Notice,
    Outcome,
    TimelineEntry,
    act,
    advance_time,
    end_silence,
    give_verdict,
    incident_key,
    is_slack_user,
    on_alert,
    open_incident,
    open_silenced,
)
from alerts.incidents.oncall import IncidentSettings
from alerts.incidents.store import ActionRequest, IncidentStore, OutboxItem, RoundWrite
from alerts.silences.model import Silence, covering
from alerts.slack_text import escape

log = logging.getLogger(__name__)


# Renders an incident's Slack message (text, blocks) as it stands: alerts.notify.slack_message's
# incident_message, handed in by the pipeline, since notification is the stage after this one.
RenderIncident = Callable[
    [Incident, str, IncidentSettings, float], tuple[str, list[dict[str, Any]]]
]


class IncidentManager:
    """Applies alert events, actions and the passing of time to a brand's incidents."""

    def __init__(self, settings: AlertConfig, store: IncidentStore, render: RenderIncident):
        self.settings = settings
        self.store = store
        self.render = render
        self.policy = settings.alerts.incidents
        self.names = {b.id: b.name for b in settings.brands.brands}
        self.platforms = {b.id: b.platforms for b in settings.brands.brands}
        self.severities = {rule.name: rule.severity for rule in settings.alerts.rules}

    async def round(
        self,
        brand: str,
        now: float,
        values: Mapping[int, Values] | None = None,
        silences: Sequence[Silence] = (),
    ) -> RoundWrite:
        """One round for a brand. ``values``: the last tick's KPIs per window and platform
        (what drove a new incident), when the caller has them; ``silences``: those in force
        (alerts.silences.store.SilenceStore.current), which keep new incidents from
        notifying."""
        store = self.store
        cursors = await store.cursors(brand)
        open_now = await store.open_incidents(brand)
        write = RoundWrite()
        for event_id, event in await store.alert_events_after(brand, cursors.get("events")):
            channel = self.policy.channel_for(
                brand, event.severity, self.settings.alerts.slack.channel
            )
            incident = open_now.get(incident_key(event.platform, channel))
            if event.event == "cleared" and (incident is None or event.rule not in incident.rules):
                incident = self._fired_in(open_now, event)
            if event.confirms and (
                incident is None or not incident.open or event.rule not in incident.firing_rules
            ):
                write.cursors["events"] = event_id
                continue  # confirms an early firing whose incident a person closed since
            if event.event == "fired" and (incident is None or not incident.open):
                context = self._context(event, values)
                context |= await incident_context(
                    store.client,
                    store.keys,
                    event,
                    self.platforms.get(brand, []),
                    self.names.get(brand, ""),
                )
                incident_id = await store.new_id(brand)
                silence = covering(silences, brand, event.platform, event.rule, event.severity, now)
                if silence is not None:
                    incident, outcome = open_silenced(
                        incident_id, event, channel, now, context, silence.id, silence_note(silence)
                    )
                    incident_metrics.SILENCED_FIRINGS.labels(brand, event.rule).inc()
                else:
                    incident, outcome = open_incident(incident_id, event, channel, now, context)
                    incident_metrics.INCIDENTS_OPENED.labels(brand, event.severity).inc()
                open_now[incident.key] = incident
            elif incident is None or not incident.open:
                write.cursors["events"] = event_id
                continue  # cleared after a person resolved it: nothing left to do
            else:
                outcome = Outcome()
                silence = None
                if event.event == "fired" and not event.confirms:
                    silence = covering(
                        silences, brand, event.platform, event.rule, event.severity, now
                    )
                    if silence is not None:
                        incident_metrics.SILENCED_FIRINGS.labels(brand, event.rule).inc()
                    elif incident.state == "silenced":  # a firing no silence covers: it opens
                        outcome = self._unsilence(
                            incident, now, f"{event.rule} fired and no silence covers it"
                        )
                joined = on_alert(incident, event, now, self.policy)
                outcome.timeline += joined.timeline
                outcome.notices += joined.notices
                if silence is not None and incident.notified_at is not None:
                    # Told before the silence: the message shows it, the thread stays quiet.
                    outcome.notices = [n for n in outcome.notices if n.kind != "reply"]
                    outcome.add(TimelineEntry(now, SYSTEM, "not notified", silence_note(silence)))
            self._record(write, incident, outcome, now)
            write.cursors["events"] = event_id
        by_id = {i.id: i for i in open_now.values()}
        for request in await store.actions_after(brand, cursors.get("actions")):
            write.cursors["actions"] = request.request
            incident = by_id.get(request.incident) or await store.get(brand, request.incident)
            if incident is None:
                write.results[request.request] = f"no incident {request.incident}"
                continue
            by_id[incident.id] = incident
            outcome = self._act(incident, request, now)
            write.results[request.request] = outcome.refused or "ok"
            incident_metrics.INCIDENT_ACTIONS.labels(
                request.action, "refused" if outcome.refused else "ok"
            ).inc()
            self._record(write, incident, outcome, now)
        for incident in by_id.values():
            if incident.open:
                self._record(write, incident, self._follow_silences(incident, silences, now), now)
            passed = advance_time(incident, now, self.policy, muted=incident.muted_by is not None)
            self._record(write, incident, passed, now)
        await store.save(brand, write)
        await store.release_held(brand, now)
        return write

    def _cover(
        self, incident: Incident, silences: Sequence[Silence], now: float
    ) -> list[Silence | None]:
        """For each rule still firing in the incident, the silence in force that matches it
        (None where none does)."""
        return [
            covering(
                silences,
                incident.brand,
                incident.platform,
                rule,
                self.severities.get(rule, incident.severity),
                now,
            )
            for rule in incident.firing_rules
        ]

    def _follow_silences(
        self, incident: Incident, silences: Sequence[Silence], now: float
    ) -> Outcome:
        """What the silences in force now mean for an open incident:

        - silenced (never notified): it opens when its firing rules are no longer all covered
          and one still fires (one that cleared resolves by itself, unnotified); while covered
          by another silence than the one that held it (a new one made to extend it), that one
          holds it now;
        - notified: while a silence covers every rule still firing in it, its escalations and
          reminders wait (``muted_by``); when none does any more, they go on from now."""
        cover = self._cover(incident, silences, now)
        uncovered = [r for r, s in zip(incident.firing_rules, cover, strict=True) if s is None]
        # The one ending last holds it (the one whose end the channel will hear of).
        found = [c for c in cover if c is not None]
        holding = max(found, key=lambda c: c.end) if found and not uncovered else None
        outcome = Outcome()
        if incident.state == "silenced":
            if uncovered:
                return self._unsilence(
                    incident,
                    now,
                    f"silence {incident.silenced_by} ended while {', '.join(uncovered)} still "
                    "fired",
                )
            if holding is not None and holding.id != incident.silenced_by:
                incident.silenced_by = holding.id
                outcome.add(
                    TimelineEntry(now, SYSTEM, f"held by {holding.id}", silence_note(holding))
                )
            return outcome
        if holding is not None and incident.muted_by != holding.id:
            incident.muted_by = holding.id
            outcome.add(
                TimelineEntry(now, SYSTEM, f"quiet under {holding.id}", silence_note(holding))
            )
        elif holding is None and incident.muted_by is not None:
            outcome.add(
                TimelineEntry(
                    now, SYSTEM, f"{incident.muted_by} over", "escalation goes on from now"
                )
            )
            incident.muted_by = None
            incident.escalate_from = now
        return outcome

    def _unsilence(self, incident: Incident, now: float, why: str) -> Outcome:
        outcome = end_silence(incident, now, why)
        if outcome.notices:
            incident_metrics.INCIDENTS_OPENED.labels(incident.brand, incident.severity).inc()
        return outcome

    @staticmethod
    def _fired_in(open_now: Mapping[str, Incident], event: AlertEvent) -> Incident | None:
        # A clearing belongs to the incident its rule fired in, whatever its channel now.
        for incident in open_now.values():
            if incident.platform == event.platform and event.rule in incident.firing_rules:
                return incident
        return None

    def _act(self, incident: Incident, request: ActionRequest, now: float) -> Outcome:
        if request.action == "verdict":
            outcome = give_verdict(incident, request.verdict, request.reason, request.who, now)
        elif request.action not in ("ack", "snooze", "resolve"):
            # Shown in Slack (and to the CLI): the queued action is not ours to trust.
            outcome = Outcome(refused=f"unknown action {escape(repr(request.action))}")
        else:
            outcome = act(
                incident,
                request.action,  # type: ignore[arg-type]
                request.who,
                now,
                request.why,
                request.snooze_for,
            )
        if outcome.refused:
            log.info(
                "incident %s: %s by %s refused: %s",
                incident.id,
                request.action,
                request.who,
                outcome.refused,
            )
            if is_slack_user(request.who):  # they clicked: tell them, and only them
                outcome.notices.append(
                    Notice("ephemeral", f"Not done: {outcome.refused}.", user=request.who)
                )
        return outcome

    def _context(self, event: AlertEvent, values: Mapping[int, Values] | None) -> dict[str, Any]:
        """What drove a new incident, as far as the tick's values tell."""
        context: dict[str, Any] = {"level": event.level}
        rows = (values or {}).get(event.window)
        if rows:
            shown = {
                platform: row.get(event.kpi)
                for platform, row in rows.items()
                if row.get(event.kpi) is not None and platform != "all"
            }
            context["platforms"] = dict(sorted(shown.items(), key=lambda kv: -float(kv[1] or 0)))
            context["platforms_kpi"] = event.kpi
        return context

    def _record(self, write: RoundWrite, incident: Incident, outcome: Outcome, now: float) -> None:
        if not (outcome.timeline or outcome.notices):
            return
        write.incidents[incident.id] = incident
        write.timeline += [(incident.id, entry) for entry in outcome.timeline]
        if incident.notified_at is None:
            # Never posted (silenced): no message to update or thread; only a refusal to the
            # person who clicked is said.
            outcome.notices = [n for n in outcome.notices if n.kind == "ephemeral"]
        name = self.names.get(incident.brand, incident.brand)
        held = self.policy.held_until(incident.severity, now)
        for notice in outcome.notices:
            text, blocks = "", list[dict[str, Any]]()
            if notice.kind in ("post", "update"):
                text, blocks = self.render(incident, name, self.policy, now)
            item = OutboxItem(
                kind=notice.kind,
                incident=incident.id,
                channel=incident.channel,
                text=notice.text or text,
                blocks=blocks,
                broadcast=notice.broadcast,
                user=notice.user,
                rule=incident.rule,
                severity=incident.severity,
            )
            if held is not None and notice.kind != "ephemeral":
                write.held.append((held, item))
            else:
                if notice.kind != "ephemeral" and incident.id not in write.release:
                    # Its severity may have risen past the quiet hours: what was held goes first
                    # (earlier rounds' from the store, this round's from here), in order.
                    write.release.add(incident.id)
                    write.outbox += [i for _, i in write.held if i.incident == incident.id]
                    write.held = [(t, i) for t, i in write.held if i.incident != incident.id]
                write.outbox.append(item)


def silence_note(silence: Silence) -> str:
    """Who made a silence, why and what it matches, for the timeline of what it held."""
    return (
        f"silence {silence.id} ({silence.matchers_text()}) by {silence.created_by}: "
        f"{silence.comment}"
    )


__all__ = ["IncidentManager", "silence_note"]
