"""Baseline backfill on the real stack: from a CSV and from a real Prometheus' history, handed
over to the evaluating worker, and exported on /metrics with the rules' trigger levels."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from alerts.detection.baseline import Baseline
from alerts.detection.configured import detector_for
from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.redis_keys import RedisKeys
from tests.conftest import (
    ROOT,
    backfill_mentions_baseline,
    free_port,
    run_cli,
    start_worker,
    stop_worker,
    write_config,
)
from tests.e2e.helpers.reading import metrics, value, wait_until

STEP = 300  # the shipped baselines.update_every
SAMPLES = 576  # two days of 5-minute samples: past the 1-day warm-up


def shipped_rule(name: str) -> dict[str, Any]:
    rules = yaml.safe_load((ROOT / "config/alerts.yaml").read_text())["rules"]
    [rule] = [r for r in rules if r["name"] == name]
    return dict(rule)


def detection_hash(settings: Settings) -> dict[str, str]:
    client = redis.Redis.from_url(settings.pipeline.redis.url, decode_responses=True)
    keys = RedisKeys(settings.pipeline.redis.key_prefix)
    fields: Any = client.hgetall(keys.detection("acme"))
    return dict(fields)


def test_csv_backfill_is_taken_over_by_the_worker_and_exported(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    # The rolling method (median and MAD of the last 288 samples) makes the numbers below
    # hand-worked ones; the seasonal method's learning is specified in the unit tests.
    baselines = yaml.safe_load((ROOT / "config/alerts.yaml").read_text())["baselines"]
    folder = write_config(
        tmp_path / "config",
        run_id,
        rules=[shipped_rule("mention_volume_surge")],
        alerts={"baselines": {**baselines, "method": "rolling"}},
    )
    settings = load_settings(folder)
    # Mid-way through a 5-minute step: the CSV ends a step before it, the worker learns it.
    now = math.floor(time.time() / STEP) * STEP + 150.0
    first = now - 150 - STEP * SAMPLES
    csv = tmp_path / "mentions.csv"
    csv.write_text(
        "timestamp,value\n" + "".join(f"{first + i * STEP:.0f},40\n" for i in range(SAMPLES))
    )

    done = backfill_mentions_baseline(settings, "--csv", str(csv))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"backfilled acme mentions (15m, x): relearned, {SAMPLES} samples learned, "
        f"{SAMPLES} in all, ready"
    )
    # Handed over, not yet the baseline: `show` sees it already.
    [field] = [f for f in detection_hash(settings) if f.startswith("backfill:")]
    assert field.startswith("backfill:mentions|900|x|")
    shown = run_cli(
        settings, "baseline", "show", "--brand", "acme", "--window", "15m", "--platform", "x"
    )
    assert shown.stdout.splitlines()[0] == f"acme mentions (15m, x): {SAMPLES} samples, ready"
    assert "expected 40.0 " in shown.stdout

    # A real worker's next evaluation takes it over and learns its own tick (no mentions).
    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        base = {"brand": "acme", "platform": "x", "window": "15m", "kpi": "mentions"}
        stored = wait_until(
            lambda: (
                (found := detection_hash(settings))
                and not [f for f in found if f.startswith("backfill:")]
                and "baseline:mentions|900|x" in found
                and found
            ),
            what="the worker to take the backfill over",
        )
        learned = json.loads(stored["baseline:mentions|900|x"])
        # The 576 samples, and the worker's own 5-minute steps since (one, or two when a step
        # boundary passed while the worker started).
        assert SAMPLES + 1 <= learned["updates"] <= SAMPLES + 2
        # Hand-worked on the sqrt scale: the last 288 samples hold at most 2 zeros, so the
        # median is sqrt(40) and the MAD 0, so the spread is the Poisson floor 0.5. Expected:
        # 40. The surge rule's level is calibrated from surges the worker has not seen yet, so it
        # is budget.start_z = 8 spreads above: (sqrt(40) + 8 * 0.5) ** 2 = 106.6.
        assert value(worker.metrics_url, "socialpulse_kpi_baseline", **base) == pytest.approx(40)
        level = {**base, "rule": "mention_volume_surge", "bound": "upper"}
        upper = value(worker.metrics_url, "socialpulse_alert_rule_trigger_level", **level)
        assert upper == pytest.approx((math.sqrt(40) + 4.0) ** 2)
        at = {"rule": "mention_volume_surge", "brand": "acme", "platform": "x"}
        assert value(worker.metrics_url, "socialpulse_alert_rule_level_z", **at) == 8
        # The warning budget (1 a week) is the surge rule's alone: the drop rule is info.
        assert value(worker.metrics_url, "socialpulse_alert_rule_budget_per_week", **at) == 1
        got = metrics(worker.metrics_url)
        # Instagram's baseline is still warming up: no line drawn for it.
        assert not [k for k in got if ("platform", "instagram") in k[1] and "trigger" in k[0]]
        firing = {"rule": "mention_volume_surge", "severity": "warning", "brand": "acme"}
        for platform in ("x", "instagram"):
            key = frozenset({**firing, "platform": platform}.items())
            assert got[("socialpulse_alert_rule_firing", key)] == 0.0
    finally:
        stop_worker(worker)

    # A warm baseline is only extended by newer history: the same CSV teaches nothing.
    again = backfill_mentions_baseline(settings, "--csv", str(csv))
    assert again.returncode == 0
    assert "extended, 0 samples learned" in again.stdout
    assert "--replace relearns it" in again.stderr


@pytest.fixture
def prometheus_with_history(tmp_path: Path) -> Any:
    """A real Prometheus (Debian's) serving two days of a worker's mentions gauge, imported
    with promtool from OpenMetrics."""
    now = time.time()
    lines = ["# TYPE socialpulse_mentions gauge"]
    start = int(now - 2 * 86400 - 3600)
    for ts in range(start, int(now) - 60, 60):
        # A daily cycle: 60 at 12:00 UTC, 20 at midnight.
        hour = (ts % 86400) / 3600
        value = 40 - 20 * math.cos(2 * math.pi * hour / 24)
        for platform in ("x", "instagram"):
            lines.append(
                f'socialpulse_mentions{{brand="acme",platform="{platform}",window="15m"}} '
                f"{value:.3f} {ts}"
            )
    lines.append("# EOF")
    (tmp_path / "history.om").write_text("\n".join(lines) + "\n")
    data = tmp_path / "tsdb"
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", "history.om", str(data)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("prometheus") or "/usr/bin/prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as ready:
                if ready.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                "Prometheus did not start: " + (tmp_path / "prometheus.log").read_text()
            )
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(20)


def test_backfill_from_prometheus_history_learns_the_daily_cycle(
    stack: Settings, tmp_path: Path, run_id: str, prometheus_with_history: str
) -> None:
    folder = write_config(tmp_path / "config", run_id)
    config = yaml.safe_load((folder / "socialpulse.yaml").read_text())
    config["prometheus"]["url"] = prometheus_with_history
    (folder / "socialpulse.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(folder)

    done = backfill_mentions_baseline(settings, "--prometheus", "2d")
    assert done.returncode == 0, done.stderr
    # One sample per 5 minutes over two days, both ends included.
    assert done.stdout.strip() == (
        "backfilled acme mentions (15m, x): relearned, 577 samples learned, 577 in all, ready"
    )
    [field] = [f for f in detection_hash(settings) if f.startswith("backfill:")]
    detector = detector_for(settings.alerts, settings.kpis.kpis)
    baseline = Baseline.from_dict(
        detector.baseline_params("mentions"), json.loads(detection_hash(settings)[field])
    )
    # The hour profile learned the cycle: noon about three times midnight.
    day = math.floor(time.time() / 86400) * 86400
    noon, midnight = baseline.expected(day + 12 * 3600), baseline.expected(day)
    assert noon is not None and midnight is not None
    assert 55 < noon.value < 65 and 17 < midnight.value < 23


def test_an_export_of_events_warms_baselines_and_calibrations_the_worker_takes_over(
    stack: Settings, tmp_path: Path, run_id: str
) -> None:
    from tests.socialpulse.app.test_history import export

    folder = write_config(tmp_path / "config", run_id, rules=[shipped_rule("mention_volume_surge")])
    settings = load_settings(folder)
    counted = export(tmp_path / "last-week.jsonl", days=5)
    done = run_cli(settings, "baseline", "backfill", "--events", str(tmp_path / "last-week.jsonl"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # acme's 15m mentions baseline on each of its platforms (x has the export's mentions, the
    # others learned a feed with nothing in it), and the surge rule's calibration on each.
    platforms = next(b.platforms for b in settings.brands.brands if b.id == "acme")
    n = len(platforms)
    assert lines[0].startswith(
        f"backfilled acme from {tmp_path / 'last-week.jsonl'}: {n} baselines learned (0 warm "
        f"ones kept), {n} rule calibrations, history "
    )
    assert lines[-1] == (
        f"{counted} events counted, 3 rejected (invalid_fields: 1, not_json: 1, ts_in_future: 1)"
    )
    handed = [f for f in detection_hash(settings) if f.startswith("backfill")]
    assert sorted(f.rsplit("|", 1)[0] for f in handed) == sorted(
        [f"backfill-calibration:mention_volume_surge|{p}" for p in platforms]
        + [f"backfill:mentions|900|{p}" for p in platforms]
    )

    worker = start_worker(folder, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: not [f for f in detection_hash(settings) if f.startswith("backfill")],
            timeout=60,
            what="the worker to take the backfill over",
        )
        at = {"rule": "mention_volume_surge", "brand": "acme", "platform": "x"}
        level = value(worker.metrics_url, "socialpulse_alert_rule_level_z", **at)
        # Calibrated from the export's own surges: not the start level of a series not learned.
        assert level != settings.alerts.budget.start_z
        assert level >= settings.alerts.budget.min_z
        base = {"brand": "acme", "platform": "x", "window": "15m", "kpi": "mentions"}
        assert value(worker.metrics_url, "socialpulse_kpi_baseline", **base) > 0
    finally:
        stop_worker(worker)
