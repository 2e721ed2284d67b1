"""What people ask of silences, read from their words (pure): the ``/socialpulse`` slash
command's text and the CLI's start, end and length.

    /socialpulse silence brand=acme rule=mention_volume_surge for=3h why="launch at 10:00"
    /socialpulse silence brand=acme platform=x,tiktok start=2026-12-08T09:45Z end=+4h launch
    /socialpulse silences            (list those in force or coming)
    /socialpulse expire s-3          (end one early)
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from alerts.silences.model import SINGULAR, SilenceError
from socialpulse.core.config_types import parse_duration, parse_instant

# Singular and plural both read, as people type them.
MATCHER_KEYS = {**{one: name for name, one in SINGULAR.items()}, **{m: m for m in SINGULAR}}
MAX_TEXT = 2000  # characters of a command's text; Slack's own limit is about 4,000
USAGE = (
    'Usage: `/socialpulse silence brand=acme rule=mention_volume_surge for=3h why="launch"` '
    "(matchers brand, platform, rule, severity, comma-separated; start=now|+30m|ISO time, "
    "end=+2h|ISO time or for=2h), `/socialpulse silences` to list them, "
    "`/socialpulse expire s-3` to end one early."
)


@dataclass
class Command:
    """One slash command: ``silence`` (with its matchers, times and why), ``list``, ``expire``
    (with the silence id) or ``help``."""

    action: str
    matchers: dict[str, list[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    length: str | None = None
    why: str = ""
    silence: str = ""


def parse_command(text: str) -> Command:
    """The command a slash command's text asks for; SilenceError saying what is wrong and the
    form to use."""
    if len(text) > MAX_TEXT:
        raise SilenceError(f"the command is {len(text)} characters; keep it under {MAX_TEXT}")
    try:
        words = shlex.split(text)
    except ValueError:
        raise SilenceError(f"a quote is not closed. {USAGE}") from None
    if not words or words[0] in ("help", "-h", "--help"):
        return Command("help")
    verb, rest = words[0].lower(), words[1:]
    if verb == "silences" or (verb == "silence" and rest[:1] == ["list"]):
        return Command("list")
    if verb == "expire" or (verb == "silence" and rest[:1] == ["expire"]):
        ids = rest[1:] if verb == "silence" else rest
        if len(ids) != 1:
            raise SilenceError("say which silence to expire, e.g. `/socialpulse expire s-3`")
        return Command("expire", silence=ids[0])
    if verb != "silence":
        raise SilenceError(f"unknown command {verb[:30]!r}. {USAGE}")
    command = Command("silence")
    loose: list[str] = []
    for word in rest:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep:
            loose.append(word)  # words without a key are the why
        elif key in MATCHER_KEYS:
            values = command.matchers.setdefault(MATCHER_KEYS[key], [])
            values += [v for v in value.split(",") if v]
        elif key == "start":
            command.start = value
        elif key == "end":
            command.end = value
        elif key == "for":
            command.length = value
        elif key == "why":
            command.why = value
        else:
            raise SilenceError(
                f"unknown key {key[:30]!r}: use brand, platform, rule, severity, start, end, "
                "for, why"
            )
    command.why = " ".join([command.why, *loose]).strip()
    return command


def parse_time(text: str, now: float, name: str) -> float:
    """``now``, ``+30m`` (from now), or an ISO 8601 time (a time without an offset is UTC)."""
    text = text.strip()
    if text.lower() == "now":
        return now
    if text.startswith("+"):
        try:
            return now + parse_duration(text[1:])
        except (ValueError, OverflowError):  # a duration of 400 digits is too long for a float
            raise SilenceError(f"{name}: {text[:30]!r} is not +<duration> (e.g. +30m)") from None
    try:
        return parse_instant(text)
    except ValueError:
        raise SilenceError(
            f"{name}: {text[:40]!r} is not a time; use now, +30m or ISO 8601 "
            "(2026-12-08T09:45Z, 2026-12-08T10:45+01:00)"
        ) from None


def silence_span(
    start: str | None, end: str | None, length: str | None, now: float
) -> tuple[float, float]:
    """The (start, end) unix times asked for: the start (default now), and an end or a
    length, not both."""
    begins = parse_time(start, now, "start") if start else now
    if (end is None) == (length is None):
        raise SilenceError("give how long it lasts: for=2h, or an end: end=+2h or an ISO time")
    if length is not None:
        try:
            return begins, begins + parse_duration(length)
        except ValueError as exc:
            raise SilenceError(f"for: {exc}") from None
        except OverflowError:
            raise SilenceError(f"for: {length[:30]!r} is longer than any silence") from None
    assert end is not None
    return begins, parse_time(end, now, "end")


__all__ = ["USAGE", "Command", "parse_command", "parse_time", "silence_span"]
