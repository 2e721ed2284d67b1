"""`socialpulse ingest` and `replay` without a reachable Kafka: a clear message and exit 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from socialpulse.core.paths import project_home
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
        [
            sys.executable,
            "-m",
            "socialpulse.cli",
            "--config",
            str(config),
            "ingest",
            str(events),
        ],
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


def test_the_gateway_raises_its_open_files_limit_or_says_how(monkeypatch) -> None:
    import resource

    from socialpulse.app.commands.ingest import _open_files_for
    from socialpulse.core.config import ConfigError

    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    _open_files_for(1000)
    assert set_to == [(1064, 4096)]  # the connections and 64 for the process itself
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 512))
    with pytest.raises(ConfigError) as refused:
        _open_files_for(1000)
    assert str(refused.value) == (
        "gateway.max_connections (1000) needs 1064 open files, and this process may open "
        "512; lower gateway.max_connections or raise the limit (ulimit -n)"
    )
    assert set_to == [(1064, 4096)]


@pytest.mark.parametrize("name", ["-", "missing.jsonl"])
def test_a_history_import_needs_a_file_that_exists(tmp_path: Path, name: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "socialpulse.cli",
            "--config",
            str(project_home() / "config"),
            "ingest",
            name,
            "--history",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        input="",
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"socialpulse ingest: {name}: --history reads a file (not stdin) that exists"
    )
