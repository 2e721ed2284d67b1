"""A real ``socialpulse gateway`` process for end-to-end tests, and requests to it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.config import load_ingest
from socialpulse.app.settings import load_settings


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

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        self.process.terminate()
        return self.process.wait(30)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A raw TCP connection to the gateway (for requests no HTTP client would send)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.settimeout(timeout)
        return sock

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.url.rsplit(":", 1)[1])


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the timeout)."""
    answer = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


class SilentBroker:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers: to a Kafka
    client, a broker frozen mid-conversation. Stops with :meth:`close`."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, name="silent-broker", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed
            while True:
                conn, _ = self.server.accept()
                self.accepted.append(conn)  # held open, never read from or written to

    def close(self) -> None:
        """Stop listening and drop the connections."""
        self.server.close()
        for conn in self.accepted:
            conn.close()


def start_gateway(
    config_dir: Path,
    log: Path,
    token: str,
    environ: dict[str, str] | None = None,
    ready: tuple[int, ...] = (200,),
) -> Gateway:
    """Start ``socialpulse gateway`` on ``config_dir`` (its ingest.yaml names the port and the
    first source, whose token is ``token``) and wait until /healthz answers with a status of
    ``ready`` (503: serving while Kafka is not connected)."""
    ingest = load_ingest(config_dir, load_settings(config_dir).brands)
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
            if gateway.request("GET", "/healthz")[0] in ready:
                return gateway
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"gateway did not answer /healthz in 60s:\n{log.read_text()}")
