"""Prometheus file_sd targets: how a worker or a gateway started by hand asks the local stack's
Prometheus to scrape it. Each target is one JSON file in a folder Prometheus watches; nothing is
written when that folder does not exist (docker-compose, or any other Prometheus, finds the
processes by its own configuration)."""

from __future__ import annotations

import json
from pathlib import Path

from socialpulse.core.paths import state_dir


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


def register_poller(host: str, port: int) -> Path | None:
    """As register_gateway, for a poller's /metrics (job socialpulse-poller)."""
    if not worker_targets_dir().is_dir():
        return None
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    folder = state_dir() / "prometheus" / "poller-targets"
    return _write_target(folder, f"poller-{port}", address, port, None)
