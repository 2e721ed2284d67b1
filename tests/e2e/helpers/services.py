"""One service of the local stack (Kafka, Redis), to stop and start again during a test."""

from __future__ import annotations

from socialpulse.app.settings import Settings
from socialpulse.devtools.stack.process import Service
from socialpulse.devtools.stack.services import build_services


def service(settings: Settings, name: str) -> Service:
    """One service of the local stack."""
    [found] = [s for s in build_services(settings) if s.name == name]
    return found
