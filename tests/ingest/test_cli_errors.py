"""`socialpulse ingest` and `replay` without a reachable Kafka: a clear message and exit 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from socialpulse.paths import project_home
from tests.conftest import free_port


def test_ingest_says_which_kafka_it_could_not_reach(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(project_home() / "config", config)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    pipeline = config / "socialpulse.yaml"
    pipeline.write_text(pipeline.read_text().replace("127.0.0.1:9092", dead))
    events = tmp_path / "one.jsonl"
    events.write_text(
        '{"id": "m-1", "ts": "2026-11-30T16:40:00Z", "platform": "x", "brand": "acme", '
        '"author": "a", "text": "hi"}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "socialpulse.cli", "--config", str(config), "ingest", str(events)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"socialpulse ingest: Kafka at {dead} did not take the events (")
    assert last.endswith(
        "start it (socialpulse stack up) or fix kafka.bootstrap_servers, then run again: "
        "events already written count once"
    )
    assert "Traceback" not in done.stderr
