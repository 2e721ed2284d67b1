"""The ``/socialpulse`` slash command: silences made, listed and expired from Slack.

Slack posts a slash command as a URL-encoded form (``command``, ``text``, ``user_id``,
``channel_id``, ``response_url``, ...: "Implementing slash commands",
https://docs.slack.dev/interactivity/implementing-slash-commands), signed like button clicks;
alerts.notify.interactivity checks the signature, the timestamp and replays first, then hands
the form here. The answer is the command's reply, within Slack's 3 seconds: to the channel
(``in_channel``) for a silence made or expired, so the team sees it, and to the person only
(``ephemeral``) for a listing, help or a refusal with its reason.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from alerts.config import AlertConfig
from alerts.incidents.lifecycle import is_slack_user, who_text
from alerts.silences.model import Known, Silence, SilenceError, new_silence, to_dict
from alerts.silences.request import USAGE, parse_command, silence_span
from alerts.silences.store import SilenceStore
from alerts.slack_text import escape, one_line

# Slack sends about a dozen fields; the bound keeps parse_qs from building a huge dict.
MAX_FORM_FIELDS = 40
LISTED = 20  # silences in a listing; Slack cuts a long reply anyway
_CHANNEL_ID = re.compile(r"[CDG][A-Z0-9]{2,20}|#[a-z0-9._-]{1,80}")


@dataclass(frozen=True)
class Answer:
    """What the endpoint answers one request: HTTP status, the outcome counted, and why."""

    status: int
    outcome: str  # a label of socialpulse_slack_interactions_total
    reason: str = ""
    # A slash command's reply (Slack shows its text to the person, or to the channel with
    # response_type in_channel); None: the reason as plain text.
    reply: dict[str, str] | None = None


def _reply(outcome: str, text: str, to_channel: bool = False) -> Answer:
    kind = "in_channel" if to_channel else "ephemeral"
    return Answer(200, outcome, reply={"response_type": kind, "text": text})


def decode_form(text: str, max_fields: int, sent: str) -> dict[str, list[str]]:
    """A URL-encoded form (Slack's clicks and commands) as its fields' values; ValueError
    saying why when its %-escapes are not UTF-8 or it has more than ``max_fields`` fields
    (the bound keeps parse_qs from building a huge dict; ``sent``: what Slack sends)."""
    try:
        return parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise ValueError("the form's %-escapes are not UTF-8") from None
    except ValueError:
        raise ValueError(f"the form has more than {max_fields} fields ({sent})") from None


def read_form(text: str) -> dict[str, str]:
    """A slash command's form, one value per field; SilenceError naming what Slack would not
    send (the answer is then 400)."""
    try:
        form = decode_form(text, MAX_FORM_FIELDS, "Slack sends about a dozen")
    except ValueError as exc:
        raise SilenceError(str(exc)) from None
    fields = {}
    for name in ("command", "text", "user_id", "channel_id"):
        values = form.get(name, [])
        if len(values) != 1:
            raise SilenceError(f"the form has {len(values)} {name} fields, not one")
        fields[name] = values[0]
    if not fields["command"].startswith("/"):
        raise SilenceError("command is not a slash command (/socialpulse)")
    if not is_slack_user(fields["user_id"]):
        raise SilenceError("user_id is not a Slack user id")
    if not _CHANNEL_ID.fullmatch(fields["channel_id"]):
        raise SilenceError("channel_id is not a Slack channel id")
    return fields


def known_names(settings: AlertConfig) -> Known:
    """What a silence may name: the configured brands (their platforms) and rules."""
    return Known(
        brands={b.id: tuple(b.platforms) for b in settings.brands.brands},
        rules={r.name: r.severity for r in settings.alerts.rules},
    )


class SlashCommands:
    """Does what a verified ``/socialpulse`` command asks, and says so."""

    def __init__(self, settings: AlertConfig, silences: SilenceStore):
        self.settings = settings
        self.silences = silences
        self.policy = settings.alerts.incidents
        self.known = known_names(settings)

    def answer(self, text: str, now: float | None = None) -> Answer:
        """The answer to a verified request's body."""
        now = time.time() if now is None else now
        try:
            form = read_form(text)
        except SilenceError as exc:
            return Answer(400, "bad_request", str(exc))
        who = form["user_id"]
        if not self.policy.may_act(who):
            return _reply(
                "not_responder",
                "Only the on-call responders (alerts.yaml: incidents.responders) may make or "
                "expire silences.",
            )
        try:
            command = parse_command(form["text"])
            if command.action == "help":
                return _reply("accepted", USAGE)
            if command.action == "list":
                return _reply("accepted", self._listing(now))
            if command.action == "expire":
                settings = self.settings.alerts.silences
                ended = self.silences.expire(command.silence, who, now, settings)
                return _reply(
                    "accepted",
                    f"Silence `{escape(ended.id)}` ({escape(ended.matchers_text())}) expired "
                    f"by {who_text(who)}; what still fires under it opens now.",
                    to_channel=True,
                )
            start, end = silence_span(command.start, command.end, command.length, now)
            made = self.silences.add(
                new_silence(
                    "",
                    command.matchers,
                    start,
                    end,
                    who,
                    command.why,
                    now,
                    "slack",
                    self.known,
                    self.settings.alerts.silences.max_duration,
                    channel=form["channel_id"],
                )
            )
        except (ValueError, OverflowError) as exc:  # SilenceError, and any number too big
            return _reply("refused", f"Not done: {escape(str(exc))}")
        return _reply("accepted", made_text(made, who), to_channel=True)

    def _listing(self, now: float) -> str:
        current = [
            s for s in self.silences.current(self.settings.alerts.silences, now) if not s.over(now)
        ]
        if not current:
            return "No silences in force or coming."
        lines = [silence_line(s, now) for s in current[:LISTED]]
        if len(current) > LISTED:
            lines.append(f"... and {len(current) - LISTED} more (`socialpulse silences list`)")
        return "\n".join(lines)


def made_text(silence: Silence, who: str) -> str:
    """The channel's line for a silence just made."""
    start, end = int(silence.starts_at), int(silence.end)
    return (
        f":mute: Silence `{escape(silence.id)}` by {who_text(who)}: "
        f"{escape(silence.matchers_text())}, from <!date^{start}^{{date_short_pretty}} "
        f"{{time}}|{start}> to <!date^{end}^{{date_short_pretty}} {{time}}|{end}>: "
        f"{one_line(silence.comment, 200)}. Firings it matches are recorded, not notified."
    )


def silence_line(silence: Silence, now: float) -> str:
    """One silence in a listing: id, state, matchers, end, who and why (escaped)."""
    end = int(silence.end)
    state = to_dict(silence, now)["state"]
    return (
        f"`{escape(silence.id)}` {state}: {escape(silence.matchers_text())}, until "
        f"<!date^{end}^{{date_short_pretty}} {{time}}|{end}>, by {who_text(silence.created_by)}: "
        f"{one_line(silence.comment, 120)}"
    )


__all__ = [
    "Answer",
    "SlashCommands",
    "decode_form",
    "known_names",
    "made_text",
    "read_form",
    "silence_line",
]
