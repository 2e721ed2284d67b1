"""`socialpulse dlq` on the real stack: dead letters listed and shown with their reason, source
and original bytes; replayed after the fix (a config change), counted once however often."""

from __future__ import annotations

import json
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from socialpulse.app.settings import Settings
from tests.conftest import run_cli, start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import value, wait_until


def counted(url: str, topic: str) -> float | None:
    try:
        return value(url, "socialpulse_events_counted_total", topic=topic)
    except OSError:
        return None  # /metrics is down while the worker restarts


def test_dead_letters_are_listed_shown_and_replayed_after_the_fix(
    stack: Settings, tmp_path: Path
) -> None:
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10])
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        settings = worker.settings
        topic = settings.pipeline.topics.mentions
        url = worker.metrics_url
        ahead = mention("acme", "x", "from a clock 10 minutes fast", "neutral")
        ahead["ts"] = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        produce(settings, topic, [ahead, b"{oops"])

        def listed() -> list[dict]:
            done = run_cli(settings, "dlq", "list", "--format", "json")
            assert done.returncode == 0, done.stderr
            return [json.loads(line) for line in done.stdout.splitlines()]

        letters = wait_until(lambda: len(listed()) == 2 and listed(), what="two dead letters")
        assert [d["reason"] for d in letters] == ["ts_in_future", "not_json"]
        partition = letters[0]["source"].split("[")[1].split("]")[0]
        first = int(letters[0]["source"].rsplit("@", 1)[1])
        assert [d["source"] for d in letters] == [
            f"{topic}[{partition}]@{first}",
            f"{topic}[{partition}]@{first + 1}",
        ]
        future, broken = letters
        assert future["detail"].startswith(f"ts: {ahead['ts']} is more than 5m ahead of now")
        assert json.loads(future["value"]) == ahead  # the original bytes
        assert broken["value"] == "{oops"
        table = run_cli(settings, "dlq", "list", "--reason", "not_json").stdout
        assert table.splitlines()[-1] == "1 of 2 dead letters"
        shown = run_cli(settings, "dlq", "show", broken["at"])
        assert json.loads(shown.stdout) == broken
        missing = run_cli(settings, "dlq", "show", "9:999")
        assert missing.returncode == 2 and "no dead letter at 9:999" in missing.stderr
        refused = run_cli(settings, "dlq", "replay")
        assert refused.returncode == 2 and "--reason, --at or --all" in refused.stderr

        # The fix: this source's clock runs ahead, so allow 1h; the worker reloads on SIGHUP.
        pipeline = yaml.safe_load((folder / "socialpulse.yaml").read_text())
        pipeline["windows"]["max_future"] = "1h"
        (folder / "socialpulse.yaml").write_text(yaml.safe_dump(pipeline))
        os.kill(worker.process.pid, signal.SIGHUP)
        wait_until(
            lambda: (
                # Logged by the old process just before it execs: /metrics answers from the
                # new one after it (the old one answers until its stop).
                "config reload: starting again" in worker.log_text()
                and counted(url, topic) is not None
            ),
            timeout=90,
            what="the worker back with the new config",
        )
        for _ in range(2):  # a second replay changes nothing: the event counts once by id
            done = run_cli(settings, "dlq", "replay", "--reason", "ts_in_future")
            assert done.stdout.strip() == "replayed 1 dead letters to their source topics"
        wait_until(
            lambda: value(url, "socialpulse_events_duplicate_total", topic=topic) == 1,
            what="the second replay seen as a duplicate",
        )
        assert counted(url, topic) == 1  # a fresh process: only the replayed event
        assert len(listed()) == 2  # nothing new was dead-lettered
    finally:
        stop_worker(worker)
