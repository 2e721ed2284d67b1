"""The configuration every component shares: the connections (``socialpulse.yaml``: kafka,
topics, redis, prometheus) and the brands watched (``brands.yaml``), checked when the files are
loaded, and the error a bad file gives. Secrets are not here: they come from the environment
(socialpulse.core.connections)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from pydantic import (
    Field,
    field_validator,
)

from socialpulse.core.config_types import Strict


class KafkaSettings(Strict):
    """``kafka``: the brokers, and the partitions and replication of the topics created."""

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port (e.g. 127.0.0.1:9092)")
        return value

    @property
    def first_port(self) -> int:
        """Port of the first bootstrap server (the one the local stack runs)."""
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


class TopicSettings(Strict):
    """``topics``: the names of the event and dead-letter topics."""

    mentions: str = "social.mentions"
    interactions: str = "social.interactions"
    snapshots: str = "social.snapshots"
    dead_letter: str = "social.deadletter"


class RedisSettings(Strict):
    """``redis``: where the counts live and the prefix of every key."""

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("sp", pattern=r"^[A-Za-z0-9_.-]+$")
    # True: ``url`` is one node of a Redis Cluster; the client discovers the others.
    cluster: bool = False

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ValueError(f"{value!r} is not a Redis URL (e.g. redis://127.0.0.1:6379/0)")
        return value

    @property
    def port(self) -> int:
        """TCP port of the configured Redis."""
        return urlparse(self.url).port or 6379


class PrometheusSettings(Strict):
    """``prometheus``: the Prometheus the boards and the CLI query."""

    url: str = "http://127.0.0.1:9090"

    @property
    def port(self) -> int:
        """TCP port Prometheus listens on."""
        return urlparse(self.url).port or 9090


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid; the message says where and why."""


_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class Brand(Strict):
    id: str = Field(pattern=_NAME)
    name: str
    platforms: list[str] = Field(min_length=1)
    # Ids of other brands in this file whose mentions this brand's share of voice is against.
    competitors: list[str] = Field(default_factory=list)

    @field_validator("platforms")
    @classmethod
    def _platform_names(cls, value: list[str]) -> list[str]:
        for platform in value:
            if not re.match(_NAME, platform):
                raise ValueError(f"{platform!r} is not a platform id (lowercase, e.g. instagram)")
        return value


class BrandsFile(Strict):
    """config/brands.yaml."""

    brands: list[Brand] = Field(min_length=1)

    @field_validator("brands")
    @classmethod
    def _unique_ids(cls, value: list[Brand]) -> list[Brand]:
        seen: set[str] = set()
        for brand in value:
            if brand.id in seen:
                raise ValueError(f"brand id {brand.id!r} is listed twice")
            seen.add(brand.id)
        for brand in value:
            for rival in brand.competitors:
                if rival not in seen or rival == brand.id:
                    raise ValueError(
                        f"{brand.id}: competitor {rival!r} is not another brand in this file "
                        "(competitors are tracked as brands too, so their mentions are counted)"
                    )
        return value
