"""Create the event topics with the configured partition count (kafka-python admin client)."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from socialpulse.core.config import KafkaSettings, TopicSettings
from socialpulse.core.connections import kafka_security

log = logging.getLogger(__name__)


def topic_names(topics: TopicSettings) -> list[str]:
    """The mention, interaction, snapshot and dead-letter topic names."""
    return [topics.mentions, topics.interactions, topics.snapshots, topics.dead_letter]


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create missing topics (partitions and replication from config); return those created."""
    admin = KafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id="socialpulse-admin",
        request_timeout_ms=15000,
        **kafka_security(),
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topic_names(topics) if name not in existing]
        created: list[str] = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, kafka.partitions, kafka.replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another worker created it between our list and create
        if created:
            log.info("created topics %s with %d partitions", created, kafka.partitions)
        return created
    finally:
        admin.close()
