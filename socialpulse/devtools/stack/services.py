"""The local stack: Kafka, Redis, Prometheus and the Slack stub, all on 127.0.0.1.

Data, logs, pids and the Kafka jars live under ``.stack/`` in the checkout (ignored by git).
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import redis

from ingest.config import load_ingest
from socialpulse.app.settings import Settings
from socialpulse.core.paths import project_home, state_dir
from socialpulse.core.scrape_targets import (
    gateway_targets_dir,
    register_extra_worker,
    register_gateway,
    write_worker_target,
)
from socialpulse.devtools.stack import kafka
from socialpulse.devtools.stack.prereqs import ensure_debian_program
from socialpulse.devtools.stack.process import Service, StackError

PROMETHEUS_CONFIG = Path("config/prometheus/prometheus.yml")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def build_services(settings: Settings) -> list[Service]:
    """The five services, configured from the settings' addresses."""
    state = state_dir()
    pipeline = settings.pipeline
    kafka_dir = state / "kafka"
    kafka_port = pipeline.kafka.first_port
    prom_dir = state / "prometheus"

    def prometheus_prepare() -> None:
        source = project_home() / PROMETHEUS_CONFIG
        shutil.copyfile(source, prom_dir / "prometheus.yml")
        shutil.rmtree(prom_dir / "rules", ignore_errors=True)  # a removed rule file goes too
        shutil.copytree(source.parent / "rules", prom_dir / "rules")
        write_worker_target("worker", pipeline.worker.metrics_host, pipeline.worker.metrics_port)

    redis_port = pipeline.redis.port
    prom_port = pipeline.prometheus.port
    stub_port = settings.alerts.slack.stub_port
    api_stub_port = urlparse(load_ingest(settings.config_dir).pollers.stub_url).port or 9330
    return [
        Service(
            name="kafka",
            port=kafka_port,
            folder=kafka_dir,
            prepare=lambda: kafka.prepare(kafka_dir, state / "m2", kafka_port),
            command=lambda: kafka.command(kafka_dir),
            probe=lambda: kafka.answers(pipeline.kafka.bootstrap_servers),
            config_hint="kafka.bootstrap_servers in config/socialpulse.yaml",
            start_timeout=90,
        ),
        Service(
            name="redis",
            port=redis_port,
            folder=state / "redis",
            command=lambda: [
                ensure_debian_program("redis-server", "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--dir",
                str(state / "redis"),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            probe=lambda: _redis_answers(redis_port),
            config_hint="redis.url in config/socialpulse.yaml",
        ),
        Service(
            name="prometheus",
            port=prom_port,
            folder=prom_dir,
            prepare=prometheus_prepare,
            command=lambda: [
                ensure_debian_program("prometheus", "prometheus"),
                f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                # Imported history (ingest --history) and the long view: 400 days, at most 4 GB.
                "--storage.tsdb.retention.time=400d",
                "--storage.tsdb.retention.size=4GB",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-lifecycle",
            ],
            probe=lambda: _http_ok(f"http://127.0.0.1:{prom_port}/-/ready"),
            config_hint="prometheus.url in config/socialpulse.yaml",
        ),
        Service(
            name="slack-stub",
            port=stub_port,
            folder=state / "slack-stub",
            command=lambda: [
                sys.executable,
                "-m",
                "socialpulse.devtools.slack_stub",
                "--port",
                str(stub_port),
                "--record",
                str(state / "slack-stub" / "messages.jsonl"),
            ],
            probe=lambda: _http_ok(f"http://127.0.0.1:{stub_port}/stub/health"),
            config_hint="slack.stub_url in config/alerts.yaml",
        ),
        Service(
            name="platform-stub",
            port=api_stub_port,
            folder=state / "platform-stub",
            command=lambda: [
                sys.executable,
                "-m",
                "socialpulse.devtools.platform_api_stub",
                "--port",
                str(api_stub_port),
            ],
            probe=lambda: _http_ok(f"http://127.0.0.1:{api_stub_port}/stub/health"),
            config_hint="pollers.stub_url in config/ingest.yaml",
        ),
    ]


def up(settings: Settings) -> list[str]:
    """Start every service that is not running; wait until each answers."""
    return [service.start() for service in build_services(settings)]


def down(settings: Settings) -> list[str]:
    """Stop every service this checkout started (Kafka last-in, first-out)."""
    return [service.stop() for service in reversed(build_services(settings))]


def status(settings: Settings) -> list[tuple[str, str, int, int | None]]:
    """(name, state, port, pid) of every service."""
    return [(s.name, s.status(), s.port, s.pid()) for s in build_services(settings)]


__all__ = [
    "StackError",
    "build_services",
    "down",
    "gateway_targets_dir",
    "register_extra_worker",
    "register_gateway",
    "status",
    "up",
    "write_worker_target",
]
