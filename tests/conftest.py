"""Shared fixtures: the real local stack (started once), per-test config folders and workers.

Tests that need services use the ``stack`` fixture: it runs ``socialpulse stack up`` (harmless
when already up) and fails the test run, never skips it, when a service does not come up.
Every pipeline test gets its own topics, consumer group, Redis key prefix, metrics port and
Slack channel, so tests never see each other's data.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from socialpulse.app.settings import Settings, load_settings
from socialpulse.core.paths import project_home, state_dir

ROOT = project_home()


@pytest.fixture(scope="session")
def stack() -> Settings:
    """The real Kafka, Redis, Prometheus and Slack stub, up for the whole session."""
    from socialpulse.devtools.stack import services
    from socialpulse.devtools.stack.process import StackError

    settings = load_settings(ROOT / "config")
    try:
        services.up(settings)
    except StackError as exc:
        pytest.fail(
            f"the local stack did not come up (tests need the real services): {exc}", pytrace=False
        )
    return settings


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    folder: Path,
    run_id: str,
    *,
    threshold: int = 5,
    brands: list[dict] | None = None,
    worker: dict | None = None,
    rules: list[dict] | None = None,
    also_rules: tuple[str, ...] = (),
    alerts: dict | None = None,
    campaigns: dict | None = None,
    gauges: str = "all",
) -> Path:
    """A config folder like the shipped one, isolated by ``run_id`` (topics, prefix, group...).
    Its rules: ``rules``, or the shipped threshold rule at ``threshold`` and the shipped rules
    named in ``also_rules``; ``campaigns`` replaces keys of socialpulse.yaml's
    metrics.campaigns; ``gauges`` is metrics.gauges."""
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = yaml.safe_load((ROOT / "config/socialpulse.yaml").read_text())
    pipeline["topics"] = {
        "mentions": f"test.{run_id}.mentions",
        "interactions": f"test.{run_id}.interactions",
        "snapshots": f"test.{run_id}.snapshots",
        "dead_letter": f"test.{run_id}.deadletter",
    }
    pipeline["redis"]["key_prefix"] = f"t{run_id}"
    pipeline["worker"].update(
        app_id=f"sp-test-{run_id}", metrics_port=free_port(), batch_within=0.1, **(worker or {})
    )
    pipeline["metrics"]["campaigns"].update(campaigns or {})
    # Every window gauge, read at each scrape, unless a test asks for the shipped "boards" (the
    # boards' own, computed every 10 s): most tests read counts the moment they are in Redis.
    pipeline["metrics"]["gauges"] = gauges
    (folder / "socialpulse.yaml").write_text(yaml.safe_dump(pipeline))
    (folder / "brands.yaml").write_text(
        yaml.safe_dump(
            {
                "brands": brands
                or [
                    {
                        "id": "acme",
                        "name": "Acme Coffee",
                        # Every platform the tests send for it: with cleaning.strict (the
                        # default) events of others are dead-lettered.
                        "platforms": [
                            "x",
                            "instagram",
                            "tiktok",
                            "weibo",
                            "youtube",
                            "xiaohongshu",
                        ],
                        "competitors": ["globex"],
                    },
                    {
                        "id": "globex",
                        "name": "Globex Airlines",
                        "platforms": [
                            "x",
                            "facebook",
                            "linkedin",
                            "youtube",
                            "wechat",
                            "weibo",
                            "tiktok",
                            "douyin",
                        ],
                    },
                ]
            }
        )
    )
    shipped = yaml.safe_load((ROOT / "config/alerts.yaml").read_text())
    shipped["slack"]["channel"] = f"#test-{run_id}"
    # Only the threshold rule by default: other tests' bursts must not page this channel.
    [high] = [r for r in shipped["rules"] if r["name"] == "negative_mentions_high"]
    high.update(value=threshold, clear_value=max(threshold // 2, 1))
    also = [r for r in shipped["rules"] if r["name"] in also_rules]
    shipped["rules"] = rules if rules is not None else [high, *also]
    shipped.update(alerts or {})
    # Everything to the test's channel, never held by quiet hours, its own endpoint port.
    incidents = shipped.setdefault("incidents", {})
    incidents["routes"] = []
    incidents.pop("quiet_hours", None)
    incidents.setdefault("interactivity", {})["port"] = free_port()
    (folder / "alerts.yaml").write_text(yaml.safe_dump(shipped))
    shutil.copyfile(ROOT / "config/kpis.yaml", folder / "kpis.yaml")
    return folder


@dataclass
class Worker:
    """A real worker process (``socialpulse worker``) on its own config."""

    settings: Settings
    process: subprocess.Popen
    log: Path

    @property
    def metrics_url(self) -> str:
        """This worker's /metrics URL."""
        w = self.settings.pipeline.worker
        return f"http://{w.metrics_host}:{w.metrics_port}/metrics"

    def log_text(self) -> str:
        """Everything the worker logged so far."""
        return self.log.read_text(errors="replace")


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``socialpulse --config <the settings' folder> ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "socialpulse.cli", "--config", str(settings.config_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def backfill_mentions_baseline(
    settings: Settings, *source: str
) -> subprocess.CompletedProcess[str]:
    """``socialpulse baseline backfill`` of acme's mentions over 15m on x from ``source``."""
    return run_cli(
        settings,
        "baseline",
        "backfill",
        "--brand",
        "acme",
        "--kpi",
        "mentions",
        "--window",
        "15m",
        "--platform",
        "x",
        *source,
    )


def start_worker(
    config_dir: Path, log: Path, environ: dict[str, str] | None = None, *options: str
) -> Worker:
    """Start a worker subprocess (``environ`` added to its environment, e.g. its own ports;
    ``options`` after ``worker``) and wait until its /metrics answers and its agents run."""
    env = {k: v for k, v in os.environ.items() if k != "SLACK_BOT_TOKEN"}  # always the stub
    env.update(environ or {})
    settings = load_settings(config_dir, env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialpulse.cli",
                "--config",
                str(config_dir),
                "worker",
                *options,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    worker = Worker(settings, process, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited ({process.returncode}):\n{worker.log_text()}")
        try:
            urllib.request.urlopen(worker.metrics_url, timeout=2).close()
            if "Ready" in worker.log_text():  # Faust logs [^Worker]: Ready once agents run
                return worker
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"worker did not become ready in 90s:\n{worker.log_text()}")


def stop_worker(worker: Worker, hard: bool = False) -> None:
    """Stop a worker (SIGTERM, or SIGKILL when ``hard``)."""
    if worker.process.poll() is None:
        (worker.process.kill if hard else worker.process.terminate)()
        try:
            worker.process.wait(30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(10)


@pytest.fixture
def run_id() -> str:
    """A short id that isolates one test's topics, keys and channel."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def pipeline(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One real worker on its own topics, shared by the tests of a module."""
    from socialpulse.core.scrape_targets import write_worker_target
    from socialpulse.core.topics import ensure_topics

    run = uuid.uuid4().hex[:10]
    # The surge and spike rules draw their trigger level and baseline band on the boards
    # (their baselines are warm only once a test backfills them). One series-bearing campaign
    # per brand, so a second campaign shows the cardinality guard at work.
    folder = write_config(
        tmp_path_factory.mktemp("config"),
        run,
        also_rules=("mention_volume_surge", "negative_spike"),
        campaigns={"brands": ["acme", "globex"], "max_per_brand": 1},
    )
    settings = load_settings(folder)
    ensure_topics(settings.pipeline.kafka, settings.pipeline.topics)
    worker = start_worker(folder, tmp_path_factory.mktemp("logs") / "worker.log")
    w = settings.pipeline.worker
    target = write_worker_target(f"test-{run}", w.metrics_host, w.metrics_port, {"test_run": run})
    yield worker
    stop_worker(worker)
    target.unlink(missing_ok=True)
    shutil.rmtree(state_dir() / "faust" / w.app_id, ignore_errors=True)


def trickle(sock: socket.socket, seconds: float) -> float:
    """Send a byte a second until the server answers (or ``seconds`` pass); when it answered,
    in seconds from now."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            sock.sendall(b"x")
        except OSError:
            break  # answered and closed
        if select.select([sock], [], [], 1.0)[0]:
            break
    return time.monotonic() - started
