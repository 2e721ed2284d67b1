"""The local stack: Kafka, Redis, Prometheus and the Slack stub, all on 127.0.0.1.

Data, logs, pids and the Kafka jars live under ``.stack/`` in the checkout (ignored by git).
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from pathlib import Path

import redis

from socialpulse.paths import project_home, state_dir
from socialpulse.settings import Settings
from socialpulse.stack import kafka
from socialpulse.stack.prereqs import ensure_debian_program
from socialpulse.stack.process import Service, StackError

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


def worker_targets_dir() -> Path:
    """Prometheus file_sd folder: one JSON file per worker to scrape (read on change)."""
    return state_dir() / "prometheus" / "targets"


def gateway_targets_dir() -> Path:
    """Prometheus file_sd folder of the ingest gateways (job socialpulse-gateway)."""
    return state_dir() / "prometheus" / "gateway-targets"


def _write_target(
    folder: Path, name: str, host: str, port: int, labels: dict[str, str] | None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [f"{host}:{port}"], "labels": labels or {}}]))
    tmp.replace(path)  # atomic: Prometheus never reads a half-written file
    return path


def write_worker_target(
    name: str, host: str, port: int, labels: dict[str, str] | None = None
) -> Path:
    """Register a worker's /metrics address with the local Prometheus."""
    return _write_target(worker_targets_dir(), name, host, port, labels)


def register_gateway(host: str, port: int) -> Path | None:
    """When the local stack runs here, have its Prometheus scrape this gateway's /metrics;
    returns the file written, for the gateway to remove when it stops (None: no local stack,
    e.g. docker-compose, whose Prometheus finds the gateway by name)."""
    if not worker_targets_dir().is_dir():
        return None
    # A gateway listening on every interface is scraped on loopback.
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return _write_target(gateway_targets_dir(), f"gateway-{port}", address, port, None)


def register_extra_worker(host: str, port: int) -> Path | None:
    """When the local stack's Prometheus runs, make sure it scrapes this worker: write a target
    file unless one already lists the address (the stack writes the configured worker's).
    Returns the file written, for the worker to remove at exit."""
    folder = worker_targets_dir()
    if not folder.is_dir():
        return None  # no local stack (docker-compose, or elsewhere): its Prometheus knows
    address = f"{host}:{port}"
    for existing in folder.glob("*.json"):
        try:
            groups = json.loads(existing.read_text())
        except (OSError, ValueError):
            continue
        if any(address in group.get("targets", []) for group in groups):
            return None
    return write_worker_target(f"worker-{port}", host, port)


def build_services(settings: Settings) -> list[Service]:
    """The four services, configured from the settings' addresses."""
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
                "--storage.tsdb.retention.time=2d",
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
                "socialpulse.slack_stub",
                "--port",
                str(stub_port),
                "--record",
                str(state / "slack-stub" / "messages.jsonl"),
            ],
            probe=lambda: _http_ok(f"http://127.0.0.1:{stub_port}/stub/health"),
            config_hint="slack.stub_url in config/alerts.yaml",
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
