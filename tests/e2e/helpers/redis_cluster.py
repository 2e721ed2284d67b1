"""A real Redis Cluster for tests: three primaries (Debian's redis-server) on free ports, the
slots spread by ``redis-cli --cluster create``. Each node keeps an append-only file synced on
every write, so a node killed with SIGKILL and started again comes back with its keys, as a
production node with persistence would."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis


@dataclass
class ClusterNode:
    """One redis-server process of the cluster, in its own folder."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start (or restart) the node on its folder's config, data and nodes.conf."""
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [_server(), str(self.folder / "redis.conf")], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise AssertionError(f"redis node on {self.port} did not start: see {log.name}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def client(self) -> redis.Redis:
        """A plain client of this node alone."""
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)


@dataclass
class LocalCluster:
    """The running nodes; ``url`` names the first, from which clients discover the rest."""

    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed URL for ``redis.url`` with ``redis.cluster: true``."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def node_of(self, key: str) -> ClusterNode:
        """The node that owns ``key``'s hash slot."""
        client = self.nodes[0].client()
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(primary[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def wait_ok(self, timeout: float = 60) -> None:
        """Wait until every node reports the cluster state ok (all slots served)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                states = [n.client().cluster("info")["cluster_state"] for n in self.nodes]
            except redis.RedisError:
                states = []
            if states and all(s == "ok" for s in states):
                return
            time.sleep(0.2)
        raise AssertionError(f"cluster not ok after {timeout}s")


def _server() -> str:
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (10000 higher) is free too, so at most 55535."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        if port in taken or port + 10000 in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise AssertionError("no free port pair (port, port + 10000) for a Redis Cluster node")


@contextmanager
def local_cluster(folder: Path, size: int = 3) -> Iterator[LocalCluster]:
    """Start ``size`` primaries, join them into one cluster, stop them all afterwards."""
    cluster = LocalCluster()
    try:
        for i in range(size):
            taken = {n.port for n in cluster.nodes} | {n.port + 10000 for n in cluster.nodes}
            node = ClusterNode(_cluster_port(taken), folder / f"node-{i}")
            node.folder.mkdir(parents=True)
            (node.folder / "redis.conf").write_text(
                "\n".join(
                    [
                        f"port {node.port}",
                        "bind 127.0.0.1",
                        f"dir {node.folder}",
                        "cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        # Short, so a dead node is noticed quickly in tests (default 15 s).
                        "cluster-node-timeout 2000",
                        "appendonly yes",
                        "appendfsync always",
                        'save ""',
                    ]
                )
                + "\n"
            )
            node.start()
            cluster.nodes.append(node)
        subprocess.run(
            [
                shutil.which("redis-cli") or "/usr/bin/redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in cluster.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster.wait_ok()
        yield cluster
    finally:
        for node in cluster.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
                node.process.wait(10)
