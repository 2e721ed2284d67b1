"""The local stack: status, idempotent start, and the messages for missing prerequisites."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from socialpulse.app.settings import Settings, load_settings
from socialpulse.devtools.stack import prereqs, services
from socialpulse.devtools.stack.kafka import new_cluster_id
from socialpulse.devtools.stack.process import StackError
from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socialpulse.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_status_reports_every_service_running(stack: Settings) -> None:
    done = cli("stack", "status")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split()[:3] for line in done.stdout.splitlines()]
    assert rows == [
        ["kafka", "running", "127.0.0.1:9092"],
        ["redis", "running", "127.0.0.1:6379"],
        ["prometheus", "running", "127.0.0.1:9090"],
        ["slack-stub", "running", "127.0.0.1:9310"],
        ["platform-stub", "running", "127.0.0.1:9330"],
    ]


def test_starting_twice_is_harmless(stack: Settings) -> None:
    before = {name: pid for name, _, _, pid in services.status(stack)}
    done = cli("stack", "up")
    assert done.returncode == 0, done.stderr
    for name, pid in before.items():
        assert f"{name}: already running (pid {pid}," in done.stdout
    assert {name: pid for name, _, _, pid in services.status(stack)} == before


def test_a_taken_port_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPULSE_HOME", str(tmp_path))  # a checkout that started nothing
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = load_settings(
            ROOT / "config", {"SOCIALPULSE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        )
        [redis_service] = [s for s in services.build_services(settings) if s.name == "redis"]
        assert redis_service.status() == "port-taken"
        with pytest.raises(StackError) as caught:
            redis_service.start()
    assert str(caught.value) == (
        f"redis: port {port} on 127.0.0.1 is in use by a program this checkout did not start. "
        "Stop that program (if it is another SocialPulse checkout's stack: `socialpulse stack "
        "down` there), or change redis.url in config/socialpulse.yaml."
    )


def test_missing_java_and_maven_are_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        StackError,
        match=r"^java is not installed; Kafka needs Java 17\+: "
        r"`apt-get install openjdk-17-jre-headless`$",
    ):
        prereqs.require_java()
    with pytest.raises(StackError, match=r"^mvn is not installed; .*`apt-get install maven`$"):
        prereqs.require_maven()


def test_bad_config_stops_the_command_with_file_key_and_problem(tmp_path: Path) -> None:
    for name in ("socialpulse.yaml", "brands.yaml", "alerts.yaml"):
        (tmp_path / name).write_text((ROOT / "config" / name).read_text())
    (tmp_path / "alerts.yaml").write_text(
        (ROOT / "config/alerts.yaml").read_text().replace("value: 80", "value: ten")
    )
    done = cli("--config", str(tmp_path), "worker")
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "alerts.yaml: rules[0].value: Input should be a valid number, unable to parse string as a "
        "number"
    )


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """A UUID whose base64 starts with "-" (first byte 0xF8-0xFB) is drawn again: Kafka's
    storage tool would read ``-t -...`` as an option and refuse to format."""
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))
    plain = uuid.UUID(bytes=bytes([0x00]) + bytes(15))
    draws = iter([dashed, dashed, plain])
    assert new_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert next(draws, None) is None
    assert all(not new_cluster_id().startswith("-") for _ in range(500))
