"""Connections to Kafka and Redis with credentials and TLS from the environment.

Secrets never live in the config files (which are in the repository) nor in ``Settings`` (which
may be printed): they are read from the environment when a connection is made.

Kafka:
- ``SOCIALPULSE_KAFKA_SECURITY_PROTOCOL``: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL;
- ``SOCIALPULSE_KAFKA_SASL_MECHANISM``: PLAIN (default), SCRAM-SHA-256, SCRAM-SHA-512;
- ``SOCIALPULSE_KAFKA_USERNAME`` / ``SOCIALPULSE_KAFKA_PASSWORD``: the SASL user;
- ``SOCIALPULSE_KAFKA_CA_FILE``: CA bundle for TLS (default: the system's).

Redis: ``SOCIALPULSE_REDIS_USERNAME`` / ``SOCIALPULSE_REDIS_PASSWORD`` (an ACL user, or only a
password for ``requirepass``); TLS with a ``rediss://`` URL. With ``redis.cluster: true`` the
URL names one node of a Redis Cluster and the clients are redis-py's cluster clients, which
find the other nodes and route each key (``{brand}`` hash tags keep a brand on one node).
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlparse

import redis
import redis.asyncio as aredis
import redis.asyncio.connection
from redis.connection import HiredisRespSerializer
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.utils import HIREDIS_AVAILABLE

from socialpulse.core.config import RedisSettings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Errors after which the same call can succeed later: Redis (or, in a cluster, the node that
# owns the key) is down, restarting or failing over. The worker retries these with backoff.
# RedisClusterException covers the cluster client finding no node to ask for the slot map
# (every node down), and SlotNotCoveredError.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
    RedisClusterException,
)
# Any failure of a Redis call (the cluster client raises some outside redis.RedisError).
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)


def lost_mid_write(error: BaseException) -> bool:
    """Whether ``error`` is a write on a connection the peer closed (a node restarting) that
    redis-py's asyncio client lets out as the transport's AttributeError or TypeError instead
    of a ConnectionError (redis/redis-py#4287), past its own retries. Only errors raised inside
    redis-py or asyncio count, so a bug of ours is never taken for Redis being away."""
    if not isinstance(error, AttributeError | TypeError):
        return False
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = frame.tb_frame.f_code.co_filename if frame is not None else ""
    return where.startswith(_CLIENT_CODE)


# Where redis-py's and asyncio's own code lives (lost_mid_write).
_CLIENT_CODE = tuple(os.path.dirname(module.__file__ or "") + os.sep for module in (redis, asyncio))


def redis_unavailable(error: BaseException) -> bool:
    """Whether the same call can succeed later: Redis or a node is down, restarting or
    failing over (REDIS_UNAVAILABLE, or a connection lost mid-write)."""
    return isinstance(error, REDIS_UNAVAILABLE) or lost_mid_write(error)


def redis_failed(error: BaseException) -> bool:
    """Whether ``error`` is any failure of a Redis call (REDIS_ERRORS, or a connection lost
    mid-write)."""
    return isinstance(error, REDIS_ERRORS) or lost_mid_write(error)


# Answers (error replies, not lost connections) Redis gives while it cannot serve for now:
# out of memory, loading, a replica, a script cache emptied by a restart, a cluster
# reconfiguring. redis-py maps these codes to classes and strips the code from the message.
_REFUSED_FOR_NOW: tuple[type[Exception], ...] = (
    *REDIS_UNAVAILABLE,
    OutOfMemoryError,
    BusyLoadingError,
    ReadOnlyError,
    NoScriptError,
    MovedError,
    AskError,
)
# ... and the codes redis-py leaves as a plain ResponseError.
_REFUSED_CODES = ("BUSY", "NOREPLICAS", "MISCONF", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "OOM")


def refused_for_now(error: BaseException) -> bool:
    """Whether a Redis error means "not now" (retry the same call later) rather than "not
    this call" (its arguments or keys are at fault)."""
    if isinstance(error, _REFUSED_FOR_NOW):
        return True
    return isinstance(error, redis.ResponseError) and str(error).split(" ", 1)[0] in _REFUSED_CODES


SECRET_ENV = ("SOCIALPULSE_KAFKA_PASSWORD", "SOCIALPULSE_REDIS_PASSWORD", "SLACK_BOT_TOKEN")


class ConnectionSettingsError(ValueError):
    """An environment variable of the connection settings has a value that cannot work."""


class RedisClusterUnreachable(RuntimeError):
    """No node of the configured Redis Cluster answered when the client was made."""


def kafka_security(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python / aiokafka client options for the environment's protocol and credentials
    (empty for PLAINTEXT); raises ConnectionSettingsError naming the variable and the fix."""
    env = os.environ if environ is None else environ
    protocol = env.get("SOCIALPULSE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ConnectionSettingsError(
            f"SOCIALPULSE_KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of {', '.join(PROTOCOLS)}"
        )
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=env.get("SOCIALPULSE_KAFKA_CA_FILE") or None
        )
    if protocol.startswith("SASL"):
        mechanism = env.get("SOCIALPULSE_KAFKA_SASL_MECHANISM", "PLAIN").upper()
        if mechanism not in MECHANISMS:
            raise ConnectionSettingsError(
                f"SOCIALPULSE_KAFKA_SASL_MECHANISM={mechanism!r}: use one of "
                f"{', '.join(MECHANISMS)}"
            )
        missing = [
            name
            for name in ("SOCIALPULSE_KAFKA_USERNAME", "SOCIALPULSE_KAFKA_PASSWORD")
            if not env.get(name)
        ]
        if missing:
            raise ConnectionSettingsError(
                f"{protocol} needs {' and '.join(missing)} in the environment"
            )
        options |= {
            "sasl_mechanism": mechanism,
            "sasl_plain_username": env["SOCIALPULSE_KAFKA_USERNAME"],
            "sasl_plain_password": env["SOCIALPULSE_KAFKA_PASSWORD"],
        }
    return options


def faust_credentials(environ: Mapping[str, str] | None = None) -> Any:
    """Faust's ``broker_credentials`` for the same settings (None for PLAINTEXT)."""
    import faust

    options = kafka_security(environ)
    if not options:
        return None
    context = options.get("ssl_context")
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=context,
            mechanism=options["sasl_mechanism"],
        )
    return faust.SSLCredentials(context)


def _redis_auth(environ: Mapping[str, str] | None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    auth: dict[str, Any] = {}
    if env.get("SOCIALPULSE_REDIS_USERNAME"):
        auth["username"] = env["SOCIALPULSE_REDIS_USERNAME"]
    if env.get("SOCIALPULSE_REDIS_PASSWORD"):
        auth["password"] = env["SOCIALPULSE_REDIS_PASSWORD"]
    return auth


def redis_client(config: RedisSettings, **options: Any) -> redis.Redis:
    """A Redis client for ``redis.url`` (a cluster client with ``redis.cluster``), with the
    environment's credentials."""
    if config.cluster:
        try:
            # Unlike the others, this client asks its seed node for the slot map at once.
            cluster = redis.RedisCluster.from_url(config.url, **_redis_auth(None), **options)
        except RedisClusterException as exc:
            where = f"{urlparse(config.url).hostname}:{config.port}"  # never the password
            raise RedisClusterUnreachable(
                f"no Redis Cluster node answers at {where} ({exc}); start the cluster, or "
                "fix redis.url (SOCIALPULSE_REDIS_URL), or set redis.cluster: false for a "
                "single Redis"
            ) from exc
        # Typed as the plain client: the code uses only commands both offer, and keeps every
        # multi-key command and transaction within one brand's hash slot.
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(config.url, **_redis_auth(None), **options)


def async_redis_client(config: RedisSettings, **options: Any) -> aredis.Redis:
    """An asyncio Redis client for ``redis.url`` (a cluster client with ``redis.cluster``),
    with the environment's credentials."""
    if config.cluster:
        cluster = aredis.RedisCluster.from_url(config.url, **_redis_auth(None), **options)
        return cast(aredis.Redis, cluster)
    client = aredis.Redis.from_url(config.url, **_redis_auth(None), **options)
    pool = client.connection_pool
    pool.connection_class = _packing_with_hiredis(cast(Any, pool.connection_class))
    return client


@functools.cache
def _packing_with_hiredis(connection: Any) -> Any:
    # redis-py's sync connections pack commands with hiredis when it is installed; its asyncio
    # ones always in Python, which was an eighth of the worker's time (a batch's script calls
    # carry thousands of arguments). The same bytes: the sync client's packer, reused.
    if not HIREDIS_AVAILABLE:
        return connection
    packer = HiredisRespSerializer()

    def pack_command(self: object, *args: Any) -> list[bytes]:
        return packer.pack(*args)

    return type(f"Hiredis{connection.__name__}", (connection,), {"pack_command": pack_command})


async def queue_script(script: Any, pipe: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue a call of ``script`` (from ``register_script``) on the async pipeline ``pipe``.

    On a Redis Cluster the script's text goes with each call (EVAL): redis-py's cluster
    pipeline does not load scripts, and a node that restarts forgets them (EVALSHA would fail
    with NOSCRIPT); Redis compiles the text once and caches it by digest. Elsewhere the
    registered script is called by digest, loaded when missing."""
    if is_cluster(pipe):
        pipe.eval(script.script, len(keys), *keys, *args)
    else:
        await script(keys=keys, args=args, client=pipe)


def is_cluster(client: object) -> bool:
    """Whether ``client`` (or its pipeline) talks to a Redis Cluster."""
    return isinstance(
        client,
        (
            redis.RedisCluster,
            aredis.RedisCluster,
            redis.cluster.ClusterPipeline,
            aredis.cluster.ClusterPipeline,
        ),
    )


__all__ = [
    "REDIS_ERRORS",
    "REDIS_UNAVAILABLE",
    "SECRET_ENV",
    "ConnectionSettingsError",
    "RedisClusterUnreachable",
    "async_redis_client",
    "faust_credentials",
    "is_cluster",
    "kafka_security",
    "lost_mid_write",
    "redis_client",
    "redis_failed",
    "redis_unavailable",
    "refused_for_now",
]
