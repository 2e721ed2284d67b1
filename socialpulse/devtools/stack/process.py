"""Start, stop and inspect one local service process (pid file, log file, readiness probe)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(Exception):
    """A service could not be started or a prerequisite is missing; the message says the fix."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Service:
    """A local service: how to prepare and launch it, and how to tell that it answers."""

    name: str
    port: int
    folder: Path
    command: Callable[[], Sequence[str]]
    probe: Callable[[], bool]
    config_hint: str  # where the port is configured, for the "port taken" message
    prepare: Callable[[], None] = lambda: None
    start_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        """Where the pid of the running process is kept."""
        return self.folder / "pid"

    @property
    def log_file(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.folder / f"{self.name}.log"

    def pid(self) -> int | None:
        """Pid of our running process, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> str:
        """running | unhealthy | stopped | port-taken (by a process we did not start)."""
        pid = self.pid()
        if pid is None:
            return "port-taken" if port_in_use(self.port) else "stopped"
        return "running" if self.probe() else "unhealthy"

    def start(self) -> str:
        """Start the service unless ours runs; wait until it answers. Returns what it did."""
        pid = self.pid()
        if pid is not None and self.probe():
            return f"{self.name}: already running (pid {pid}, port {self.port})"
        if pid is not None:
            self.stop()
        if port_in_use(self.port):
            raise StackError(
                f"{self.name}: port {self.port} on 127.0.0.1 is in use by a program this checkout "
                f"did not start. Stop that program (if it is another SocialPulse checkout's stack: "
                f"`socialpulse stack down` there), or change {self.config_hint}."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prepare()
        argv = list(self.command())
        with self.log_file.open("ab") as log:
            log.write(f"\n--- starting {time.strftime('%Y-%m-%d %H:%M:%S')}: {argv[0]}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **self.env},
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"{self.name}: exited with code {proc.returncode} at start; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if self.probe():
                return f"{self.name}: started (pid {proc.pid}, port {self.port})"
            time.sleep(0.5)
        raise StackError(
            f"{self.name}: did not answer on port {self.port} within "
            f"{self.start_timeout:.0f}s; last lines of {self.log_file}:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> str:
        """Stop our process (SIGTERM, then SIGKILL after ``timeout``)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return f"{self.name}: not running"
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name}: stopped"

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the service's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
