"""The Slack stub's drills (clicks, slash commands) and the incidents CLI, for e2e tests."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from socialpulse.app.settings import Settings
from tests.conftest import run_cli


def stub_post(settings: Settings, path: str, body: dict[str, Any]) -> dict[str, Any]:
    stub = settings.alerts.slack.stub_url.rstrip("/").removesuffix("/api")
    request = urllib.request.Request(
        f"{stub}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def click(settings: Settings, **fields: Any) -> int:
    """A button click sent by the stub as Slack would; the endpoint's HTTP status."""
    endpoint = settings.alerts.incidents.interactivity
    url = f"http://{endpoint.host}:{endpoint.port}{endpoint.path}"
    body = {"url": url, "channel": settings.alerts.slack.channel, **fields}
    return int(stub_post(settings, "/stub/click", body)["status"])


def incident(settings: Settings, incident_id: str) -> dict[str, Any]:
    done = run_cli(settings, "incidents", "show", incident_id, "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def command(settings: Settings, text: str, **fields: Any) -> tuple[int, Any]:
    """A ``/socialpulse`` slash command sent by the stub as Slack would (signed; ``user``,
    ``channel``, ``sign``, ``age`` as for clicks): the endpoint's status and reply."""
    endpoint = settings.alerts.incidents.interactivity
    url = f"http://{endpoint.host}:{endpoint.port}{endpoint.commands_path}"
    body = {"url": url, "channel": settings.alerts.slack.channel, "text": text, **fields}
    answer = stub_post(settings, "/stub/command", body)
    return int(answer["status"]), answer["reply"]
