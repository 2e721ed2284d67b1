"""Mention and interaction events as platforms send them, and producing them to Kafka."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from socialpulse.app.settings import Settings


def mention(
    brand: str,
    platform: str,
    text: str,
    sentiment: Any = None,
    ago: float = 0,
    author: str | None = None,
) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "id": f"m-{uuid.uuid4().hex}",
        "ts": (datetime.now(UTC) - timedelta(seconds=ago)).isoformat(),
        "platform": platform,
        "brand": brand,
        "author": author or f"@user-{uuid.uuid4().hex[:8]}",
        "text": text,
    }
    if sentiment is not None:
        event["sentiment"] = sentiment
    return event


def interaction(brand: str, platform: str, kind: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "id": f"i-{uuid.uuid4().hex}",
        "ts": datetime.now(UTC).isoformat(),
        "platform": platform,
        "brand": brand,
        "kind": kind,
        "content_id": "post-1",
        "user_id": f"u-{uuid.uuid4().hex[:6]}",
    }


def produce(settings: Settings, topic: str, values: list[Any]) -> None:
    """Send events (dicts as JSON, bytes as they are) keyed by brand, and wait for the acks."""
    producer = KafkaProducer(
        bootstrap_servers=settings.pipeline.kafka.bootstrap_servers, acks="all"
    )
    for value in values:
        if isinstance(value, dict):
            producer.send(topic, key=value["brand"].encode(), value=json.dumps(value).encode())
        else:
            producer.send(topic, key=b"acme", value=value)
    producer.flush(30)
    producer.close()
