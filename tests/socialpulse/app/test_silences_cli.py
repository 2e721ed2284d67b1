"""``socialpulse silences`` and ``socialpulse incidents verdict`` on the real Redis: made,
listed and expired exactly; what cannot be done exits 2 (or 1 for an incident that cannot take
it) with the reason, and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from socialpulse.app.commands.silences import plain
from socialpulse.app.settings import Settings, load_settings
from tests.conftest import run_cli, write_config


def settings_for(tmp_path: Path, run_id: str) -> Settings:
    return load_settings(write_config(tmp_path / "config", run_id))


def test_silences_from_the_command_line(stack: Settings, tmp_path: Path, run_id: str) -> None:
    settings = settings_for(tmp_path, run_id)
    assert run_cli(settings, "silences", "list").stdout == "no silences in force or coming\n"
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=30)
    until = (start + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M UTC")
    made = run_cli(
        settings,
        "silences",
        "add",
        "--brand",
        "acme",
        "--rule",
        "negative_mentions_high",
        "--start",
        start.isoformat(),
        "--for",
        "2h",
        "--why",
        "launch <at> 10",
        "--as",
        "alice",
    )
    assert (made.returncode, made.stdout) == (
        0,
        f"silence s-1 (brand=acme rule=negative_mentions_high) until {until}\n",
    )
    listed = run_cli(settings, "silences", "list")
    assert listed.stdout == (
        f"s-1 pending: brand=acme rule=negative_mentions_high, until {until}, by "
        "alice (CLI): launch <at> 10\n"
    )
    [row] = map(
        json.loads, run_cli(settings, "silences", "list", "--format", "json").stdout.split("\n")[:1]
    )
    assert (row["id"], row["state"], row["source"], row["comment"]) == (
        "s-1",
        "pending",
        "cli",
        "launch <at> 10",
    )
    ended = run_cli(settings, "silences", "expire", "s-1", "--as", "bob")
    assert (ended.returncode, ended.stdout) == (0, "silence s-1 expired by bob (CLI)\n")
    assert run_cli(settings, "silences", "list").stdout == "no silences in force or coming\n"
    assert (
        json.loads(run_cli(settings, "silences", "list", "--all", "--format", "json").stdout)[
            "state"
        ]
        == "expired"
    )


def test_what_cannot_be_a_silence_exits_2_with_the_reason(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = settings_for(tmp_path, run_id)
    for args, said in [
        (["--brand", "nobody", "--for", "1h"], "brands: nobody is not one of the configured"),
        (["--for", "1h"], "a silence needs at least one matcher"),
        (["--brand", "acme"], "give how long it lasts: for=2h"),
        (["--brand", "acme", "--for", "1h", "--end", "+2h"], "give how long it lasts"),
        (["--brand", "acme", "--start", "soon", "--for", "1h"], "start: 'soon' is not a time"),
        (["--brand", "acme", "--end", "2020-01-01T00:00Z"], "end: it must come after the start"),
        (["--brand", "acme", "--for", "30d"], "end: 30d is longer than silences.max_duration"),
        (["--brand", "acme", "--start", "+400d", "--for", "1h"], "start: more than a year"),
        (["--brand", "acme", "--for", "9" * 400 + "d"], "for: '999"),
    ]:
        done = run_cli(settings, "silences", "add", *args, "--why", "x")
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(f"socialpulse silences: {said}"), (args, done.stderr)
    expired = run_cli(settings, "silences", "expire", "s-404")
    assert (expired.returncode, expired.stderr) == (
        2,
        "socialpulse silences: no silence 's-404'; `socialpulse silences list` shows them\n",
    )
    assert run_cli(settings, "silences", "list", "--all").stdout == (
        "no silences in force or coming\n"
    )


def test_a_verdict_on_no_incident_or_a_bad_one_is_refused(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    settings = settings_for(tmp_path, run_id)
    missing = run_cli(settings, "incidents", "verdict", "acme-7", "useful")
    assert (missing.returncode, missing.stderr) == (
        2,
        "socialpulse incidents: no incident acme-7\n",
    )
    bad = run_cli(settings, "incidents", "verdict", "acme-7", "great")
    assert bad.returncode == 2 and "invalid choice: 'great'" in bad.stderr
    reason = run_cli(settings, "incidents", "verdict", "acme-7", "not_useful", "--reason", "meh")
    assert reason.returncode == 2 and "invalid choice: 'meh'" in reason.stderr
    unknown = run_cli(settings, "incidents", "verdicts", "--brand", "nobody")
    assert (unknown.returncode, unknown.stderr) == (2, "socialpulse incidents: no brand 'nobody'\n")
    assert run_cli(settings, "incidents", "verdicts").stdout == ""


def test_a_slack_listing_line_reads_plainly_in_a_terminal() -> None:
    line = (
        "`s-2` active: brand=acme, until <!date^1796656025^{date_short_pretty} {time}|1796656025>"
        ", by <@U0SOCIAL1>: launch &lt;!channel&gt; &amp; &lt;@U9&gt;"
    )
    assert plain(line) == (
        "s-2 active: brand=acme, until 2026-12-07 15:07 UTC, by U0SOCIAL1: launch <!channel> "
        "& <@U9>"
    )
