"""Silences as data (pure): matching, what a person may make, recurring occurrences, and the
slash command's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.silences.config import RecurringSilence, SilenceSettings
from alerts.silences.model import Known, Silence, SilenceError, covering, expiring, new_silence
from alerts.silences.request import Command, parse_command, parse_time, silence_span

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()  # a Thursday
KNOWN = Known(
    brands={"acme": ("x", "instagram"), "globex": ("tiktok",)},
    rules={"negative_spike": "critical", "mention_volume_surge": "warning"},
)


def make(**changes: Any) -> Silence:
    asked: dict[str, Any] = {
        "silence_id": "s-1",
        "matchers": {"brands": ["acme"]},
        "starts_at": NOW,
        "ends_at": NOW + 3600,
        "who": "U0SOCIAL1",
        "why": "launch",
        "now": NOW,
        "source": "cli",
        "known": KNOWN,
        "max_duration": 86400,
    }
    return new_silence(**(asked | changes))


def test_matchers_each_narrow_and_empty_ones_match_anything() -> None:
    silence = make(matchers={"brands": ["acme"], "severities": ["warning"]})
    assert silence.matches("acme", "x", "mention_volume_surge", "warning")
    assert silence.matches("acme", "tiktok", "anything", "warning")
    assert not silence.matches("acme", "x", "negative_spike", "critical")
    assert not silence.matches("globex", "x", "mention_volume_surge", "warning")
    assert silence.matchers_text() == "brand=acme severity=warning"


def test_active_from_its_start_until_its_end_or_its_expiry() -> None:
    silence = make(starts_at=NOW + 60, ends_at=NOW + 600)
    assert [silence.active(t) for t in (NOW, NOW + 60, NOW + 599, NOW + 600)] == [
        False,
        True,
        True,
        False,
    ]
    ended = silence.expire("U2", NOW + 100)
    assert (ended.end, ended.expired_by, ended.active(NOW + 100)) == (NOW + 100, "U2", False)
    with pytest.raises(SilenceError, match="silence s-1 has already ended"):
        ended.expire("U2", NOW + 200)
    # Expired before it began: it never silences, and its end is its start.
    assert make(starts_at=NOW + 60).expire("U3", NOW).end == NOW + 60


def test_covering_picks_the_active_match_that_ends_last() -> None:
    short = make(silence_id="s-1", ends_at=NOW + 60)
    long = make(silence_id="s-2", ends_at=NOW + 600)
    other = make(silence_id="s-3", matchers={"brands": ["globex"]}, ends_at=NOW + 900)
    found = covering([short, long, other], "acme", "x", "negative_spike", "critical", NOW + 1)
    assert found is long
    assert covering([short], "acme", "x", "negative_spike", "critical", NOW + 60) is None
    assert expiring([short, long, other], NOW + 1, 300) == [short]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"matchers": {}}, "a silence needs at least one matcher"),
        ({"matchers": {"brands": [" ", ""]}}, "a silence needs at least one matcher"),
        (
            {"matchers": {"brands": ["acme", "nope"]}},
            "brands: nope is not one of the configured brands: acme, globex",
        ),
        (
            {"matchers": {"platforms": ["<!channel>"]}},
            "platforms: '<!channel>' is not one of the configured platforms: all, instagram, "
            "tiktok, x",
        ),
        (
            {"matchers": {"rules": ["negative_spik"]}},
            "rules: negative_spik is not one of the configured rules",
        ),
        ({"matchers": {"severities": ["high"]}}, "severities: high is not one of"),
        ({"why": "  "}, "why: say why it is silenced"),
        ({"why": "x" * 501}, "why: 501 characters; keep it under 500"),
        ({"ends_at": NOW}, "end: it must come after the start"),
        ({"starts_at": NOW - 7200, "ends_at": NOW - 60}, "end: it is already past"),
        (
            {"ends_at": NOW + 2 * 86400},
            "end: 2d is longer than silences.max_duration (1d); declare a recurring silence",
        ),
    ],
)
def test_what_a_person_gets_wrong_is_refused_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SilenceError) as refused:
        make(**changes)
    assert str(refused.value).startswith(message)


def test_the_why_is_kept_on_one_line_and_duplicates_dropped() -> None:
    silence = make(matchers={"brands": ["acme", "acme"]}, why="launch\n  at\t10:00")
    assert (silence.brands, silence.comment) == (("acme",), "launch at 10:00")
    assert Silence.from_json(silence.to_json()) == silence


def recurring(**changes: Any) -> RecurringSilence:
    data = {
        "name": "drop",
        "comment": "weekly drop",
        "brands": ["acme"],
        "days": ["thu"],
        "start": "22:00",
        "end": "01:00",
        "timezone": "Europe/Berlin",
    }
    return RecurringSilence.model_validate(data | changes)


def test_a_recurring_silence_over_midnight_in_its_time_zone() -> None:
    drop = recurring()
    # Thursday 22:00 to Friday 01:00 in Berlin (UTC+1 in December).
    start = datetime(2026, 12, 3, 21, 0, tzinfo=UTC).timestamp()
    end = datetime(2026, 12, 4, 0, 0, tzinfo=UTC).timestamp()
    assert drop.occurrences(NOW) == [(start, end)]  # next week's starts over a week away
    assert drop.occurrences(end) == [(start + 7 * 86400, end + 7 * 86400)]
    # Active just after midnight: the occurrence that began the day before.
    assert drop.occurrences(end - 60)[0] == (start, end)
    [silence] = SilenceSettings(recurring=[drop]).declared(start, start + 3600)
    assert (silence.id, silence.source, silence.created_by) == (
        f"config:drop:{int(start)}",
        "config",
        "alerts.yaml",
    )
    assert silence.active(start) and not silence.active(end)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"days": ["thursday"]}, "'thursday' is not a day; use mon, tue"),
        ({"days": []}, "give at least one day"),
        ({"brands": []}, "give at least one of brands, platforms, rules, severities"),
        ({"end": "22:00"}, "start and end are the same time"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA time zone"),
        ({"name": "Bad Name"}, "String should match pattern"),
    ],
)
def test_a_bad_recurring_silence_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        recurring(**changes)


def test_recurring_names_are_ids() -> None:
    with pytest.raises(ValidationError, match="two recurring silences are named 'drop'"):
        SilenceSettings(recurring=[recurring(), recurring()])


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("silences", Command("list")),
        ("silence list", Command("list")),
        ("expire s-3", Command("expire", silence="s-3")),
        ("silence expire s-3", Command("expire", silence="s-3")),
        (
            'silence brand=acme,globex rule=negative_spike for=2h why="launch at 10"',
            Command(
                "silence",
                {"brands": ["acme", "globex"], "rules": ["negative_spike"]},
                length="2h",
                why="launch at 10",
            ),
        ),
        (
            "silence platforms=x start=+30m end=2026-12-08T12:00Z product launch",
            Command(
                "silence",
                {"platforms": ["x"]},
                start="+30m",
                end="2026-12-08T12:00Z",
                why="product launch",
            ),
        ),
    ],
)
def test_the_slash_commands_words(text: str, command: Command) -> None:
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('silence why="open', "a quote is not closed"),
        ("mute brand=acme", "unknown command 'mute'"),
        ("silence colour=red", "unknown key 'colour': use brand, platform"),
        ("expire", "say which silence to expire"),
        ("expire s-1 s-2", "say which silence to expire"),
        ("silence " + "x" * 2001, "the command is 2009 characters; keep it under 2000"),
    ],
)
def test_words_it_cannot_read_are_refused_with_the_form(text: str, message: str) -> None:
    with pytest.raises(SilenceError) as refused:
        parse_command(text)
    assert str(refused.value).startswith(message)


def test_times_and_spans() -> None:
    assert parse_time("now", NOW, "start") == NOW
    assert parse_time("+90m", NOW, "start") == NOW + 5400
    assert parse_time("2026-12-03T13:00", NOW, "end") == NOW + 3600  # no offset: UTC
    assert parse_time("2026-12-03T13:00+01:00", NOW, "end") == NOW
    assert silence_span(None, None, "2h", NOW) == (NOW, NOW + 7200)
    assert silence_span("+1h", "+3h", None, NOW) == (NOW + 3600, NOW + 3 * 3600)
    for start, end, length, message in [
        (None, None, None, "give how long it lasts"),
        (None, "+1h", "1h", "give how long it lasts"),
        (None, None, "soon", "for: 'soon' is not a duration"),
        ("+x", None, "1h", "start: '+x' is not +<duration>"),
        ("tomorrow", None, "1h", "start: 'tomorrow' is not a time; use now, +30m or ISO 8601"),
    ]:
        with pytest.raises(SilenceError) as refused:
            silence_span(start, end, length, NOW)
        assert str(refused.value).startswith(message), (start, end, length)
