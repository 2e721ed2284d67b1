"""A real ``socialpulse gateway`` process for end-to-end tests, and requests to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.config import load_ingest
from socialpulse.settings import load_settings


@dataclass
class Gateway:
    """A running gateway: its base URL, process, log and the bearer token its source has."""

    url: str
    process: subprocess.Popen
    log: Path
    token: str

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of one request (errors included)."""
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post_events(
        self, payload: Any, token: str | None = "", content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/events with the gateway's token (``token``: another one; None: none);
        the status and the JSON answer."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": content_type}
        bearer = self.token if token == "" else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        status, _, answer = self.request("POST", "/v1/events", body, headers)
        return status, json.loads(answer)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it."""
        self.process.terminate()
        self.process.wait(30)


def start_gateway(
    config_dir: Path, log: Path, token: str, environ: dict[str, str] | None = None
) -> Gateway:
    """Start ``socialpulse gateway`` on ``config_dir`` (its ingest.yaml names the port and the
    first source, whose token is ``token``) and wait until /healthz answers."""
    ingest = load_ingest(load_settings(config_dir))
    env = os.environ | {ingest.token_env(ingest.gateway.sources[0]): token} | (environ or {})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "socialpulse.cli", "--config", str(config_dir), "gateway"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    gateway = Gateway(f"http://127.0.0.1:{ingest.gateway.port}", process, log, token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited ({process.returncode}):\n{log.read_text()}")
        try:
            if gateway.request("GET", "/healthz")[0] == 200:
                return gateway
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"gateway did not answer /healthz in 60s:\n{log.read_text()}")
