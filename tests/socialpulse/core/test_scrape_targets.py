"""Prometheus file_sd targets: written only where the local stack's Prometheus watches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialpulse.core.scrape_targets import (
    gateway_targets_dir,
    register_extra_worker,
    register_gateway,
    worker_targets_dir,
)


def test_a_gateway_registers_with_the_local_prometheus_only_when_one_is_set_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPULSE_HOME", str(tmp_path))
    assert register_gateway("127.0.0.1", 9320) is None  # no local stack here
    assert not gateway_targets_dir().exists()
    (tmp_path / ".stack" / "prometheus" / "targets").mkdir(parents=True)
    written = register_gateway("0.0.0.0", 9321)
    assert written == gateway_targets_dir() / "gateway-9321.json"
    assert json.loads(written.read_text()) == [{"targets": ["127.0.0.1:9321"], "labels": {}}]


def test_an_extra_worker_is_registered_once_and_only_with_a_local_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPULSE_HOME", str(tmp_path))
    assert register_extra_worker("127.0.0.1", 9400) is None  # no local stack here
    worker_targets_dir().mkdir(parents=True)
    written = register_extra_worker("127.0.0.1", 9400)
    assert written == worker_targets_dir() / "worker-9400.json"
    assert json.loads(written.read_text()) == [{"targets": ["127.0.0.1:9400"], "labels": {}}]
    # Already listed (by that file, or the stack's own): nothing more is written.
    assert register_extra_worker("127.0.0.1", 9400) is None
    assert sorted(p.name for p in worker_targets_dir().iterdir()) == ["worker-9400.json"]
