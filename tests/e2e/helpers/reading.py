"""Reading the running system back: /metrics samples and KPIs, `socialpulse kpis` and `dlq`,
the Slack stub's messages, Prometheus queries; and waiting for a condition."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer

from socialpulse.app.settings import Settings

Sample = tuple[str, frozenset[tuple[str, str]]]


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def metrics(url: str) -> dict[Sample, float]:
    """The worker's /metrics as {(name, labels): value}."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples: dict[Sample, float] = {}
    for m in re.finditer(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", text, re.MULTILINE):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(url: str, name: str, **labels: str) -> float | None:
    """One sample of the worker's /metrics, or None when it is not exported."""
    return metrics(url).get((name, frozenset(labels.items())))


def kpi(url: str, name: str, brand: str, platform: str, window: str = "5m") -> float | None:
    """A rolling count on /metrics."""
    return value(url, f"socialpulse_{name}", brand=brand, platform=platform, window=window)


def kpis_report(settings: Settings, brand: str, window: str, *options: str) -> dict[str, Any]:
    """What `socialpulse kpis --format json` prints for a brand and window."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "socialpulse.cli",
            "--config",
            str(settings.config_dir),
            "kpis",
            "--brand",
            brand,
            "--window",
            window,
            "--format",
            "json",
            *options,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(done.stdout))


def dead_letters(
    settings: Settings, source_topic: str, stop_after: int | None = None
) -> list[tuple[bytes, dict[str, bytes]]]:
    """(value, headers) of the dead letters from ``source_topic``: the first ``stop_after``,
    or all that arrive until the topic has been quiet for 15 s."""
    consumer = KafkaConsumer(
        settings.pipeline.topics.dead_letter,
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
        group_id=None,
    )
    letters = []
    for record in consumer:
        headers = dict(record.headers)
        if headers.get("source_topic") == source_topic.encode():
            letters.append((record.value, headers))
            if len(letters) == stop_after:
                break
    consumer.close()
    return letters


def stub_messages(settings: Settings) -> list[dict[str, Any]]:
    stub = settings.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
    query = urllib.parse.urlencode({"channel": settings.alerts.slack.channel})
    with urllib.request.urlopen(f"{stub}/stub/messages?{query}", timeout=5) as response:
        return list(json.load(response)["messages"])


def prometheus_query(settings: Settings, expr: str) -> dict[str, Any]:
    url = f"{settings.pipeline.prometheus.url}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.load(response))


def metric_names(text: str) -> set[str]:
    """Every series name in a PromQL expression that belongs to SocialPulse (a ``__name__``
    matcher is a pattern, not a name)."""
    text = re.sub(r'__name__=~"[^"]*"', "", text)
    return {n for n in re.findall(r"[A-Za-z_:][\w:]*", text) if "socialpulse_" in n}


def ticks_after(url: str, ticks: int = 2, timeout: float = 60) -> None:
    """Wait until the worker at ``url`` has evaluated ``ticks`` more evaluation ticks than it
    had (``socialpulse_rule_ticks_total``): a check that nothing fired, made after this, is
    made after the rules provably ran on what was counted before it (the second tick's windows
    end past the first's)."""
    start = value(url, "socialpulse_rule_ticks_total") or 0
    wait_until(
        lambda: (value(url, "socialpulse_rule_ticks_total") or 0) >= start + ticks,
        timeout=timeout,
        what=f"{ticks} more evaluation ticks",
    )
