"""Config reload on the real stack: SIGHUP with an invalid file is refused with the file, key
and problem, and the worker goes on with its config; with a valid change, the same process
restarts with the new config and nothing counted is lost or doubled."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
import yaml

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.config import ConfigError
from tests.conftest import start_worker, stop_worker, write_config
from tests.e2e.helpers.events import mention, produce
from tests.e2e.helpers.reading import kpi, value, wait_until


def trigger_level(url: str) -> float | None:
    labels = {
        "rule": "negative_mentions_high",
        "brand": "acme",
        "platform": "x",
        "kpi": "mentions_negative",
        "window": "5m",
        "bound": "upper",
    }
    try:
        return value(url, "socialpulse_alert_rule_trigger_level", **labels)
    except OSError:
        return None  # /metrics is down while the worker restarts


def test_sighup_refuses_an_invalid_config_and_applies_a_valid_one(
    stack: Settings, tmp_path: Path
) -> None:
    folder = write_config(tmp_path / "config", uuid.uuid4().hex[:10], threshold=5)
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        settings = worker.settings
        url = worker.metrics_url
        produce(
            settings, settings.pipeline.topics.mentions, [mention("acme", "x", "hi", "neutral")]
        )
        wait_until(lambda: kpi(url, "mentions", "acme", "x") == 1, what="the first mention")
        assert trigger_level(url) == 5

        alerts = folder / "alerts.yaml"
        good = yaml.safe_load(alerts.read_text())
        bad = yaml.safe_load(alerts.read_text())
        bad["rules"][0]["value"] = "lots"
        alerts.write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError) as refused:
            load_settings(folder)
        os.kill(worker.process.pid, signal.SIGHUP)
        wait_until(
            lambda: "config reload refused, the running config stays" in worker.log_text(),
            what="the refusal in the log",
        )
        assert str(refused.value) in worker.log_text()  # file, key and problem
        assert "alerts.yaml: rules[0].value" in str(refused.value)
        assert worker.process.poll() is None
        assert value(url, "socialpulse_config_reloads_total", outcome="refused") == 1
        produce(
            settings, settings.pipeline.topics.mentions, [mention("acme", "x", "yo", "neutral")]
        )
        wait_until(lambda: kpi(url, "mentions", "acme", "x") == 2, what="counting goes on")
        assert trigger_level(url) == 5

        good["rules"][0]["value"] = 7
        alerts.write_text(yaml.safe_dump(good))
        os.kill(worker.process.pid, signal.SIGHUP)
        wait_until(lambda: trigger_level(url) == 7, timeout=90, what="the new threshold")
        assert worker.process.poll() is None  # the same process, restarted in place
        assert "restarting the worker to apply it" in worker.log_text()
        produce(
            settings, settings.pipeline.topics.mentions, [mention("acme", "x", "ok", "neutral")]
        )
        wait_until(lambda: kpi(url, "mentions", "acme", "x") == 3, what="counting after restart")
    finally:
        stop_worker(worker)
