"""Connections to Kafka and Redis with credentials and TLS from the environment.

Secrets never live in the config files (which are in the repository) nor in ``Settings`` (which
may be printed): they are read from the environment when a connection is made.

Kafka:
- ``SOCIALPULSE_KAFKA_SECURITY_PROTOCOL``: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL;
- ``SOCIALPULSE_KAFKA_SASL_MECHANISM``: PLAIN (default), SCRAM-SHA-256, SCRAM-SHA-512;
- ``SOCIALPULSE_KAFKA_USERNAME`` / ``SOCIALPULSE_KAFKA_PASSWORD``: the SASL user;
- ``SOCIALPULSE_KAFKA_CA_FILE``: CA bundle for TLS (default: the system's).

Redis: ``SOCIALPULSE_REDIS_USERNAME`` / ``SOCIALPULSE_REDIS_PASSWORD`` (an ACL user, or only a
password for ``requirepass``); TLS with a ``rediss://`` URL.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio as aredis

from socialpulse.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_ENV = ("SOCIALPULSE_KAFKA_PASSWORD", "SOCIALPULSE_REDIS_PASSWORD", "SLACK_BOT_TOKEN")


class ConnectionSettingsError(ValueError):
    """An environment variable of the connection settings has a value that cannot work."""


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


def redis_client(settings: Settings, **options: Any) -> redis.Redis:
    """A Redis client for ``redis.url``, with the environment's credentials."""
    return redis.Redis.from_url(settings.pipeline.redis.url, **_redis_auth(None), **options)


def async_redis_client(settings: Settings, **options: Any) -> aredis.Redis:
    """An asyncio Redis client for ``redis.url``, with the environment's credentials."""
    return aredis.Redis.from_url(settings.pipeline.redis.url, **_redis_auth(None), **options)


__all__ = [
    "SECRET_ENV",
    "ConnectionSettingsError",
    "async_redis_client",
    "faust_credentials",
    "kafka_security",
    "redis_client",
]
