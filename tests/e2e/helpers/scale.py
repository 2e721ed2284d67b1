"""Eight brands that reach all six Kafka partitions and all three Redis Cluster nodes, and what a
worker has consumed and counted of them."""

from __future__ import annotations

import uuid
from pathlib import Path

from socialpulse.app.settings import Settings
from tests.conftest import Worker, write_config
from tests.e2e.helpers.reading import value

# Eight brands, so that keys (brand ids) spread over the six partitions.
# Chosen so that their keys reach every one of the 6 Kafka partitions (kafka-python's murmur2
# partitioner) and every node of a three-primary Redis Cluster (CRC16 of the {brand} hash tag):
# then any worker of three, and any node, has work. (brand0..brand7 left partitions 0, 3 and
# 4 empty, and a worker given those counted nothing.) brand0 and brand4 stay where they are:
# the stream's negative mentions land on them.
BRAND_IDS = ["brand0", "brand13", "brand23", "brand26", "brand4", "brand6", "brand30", "brand31"]


BRANDS = [{"id": b, "name": f"Brand {b[5:]}", "platforms": ["x", "tiktok"]} for b in BRAND_IDS]


def eight_brands_config(folder: Path) -> Path:
    """A test config with the eight brands: its own brands (not the demo's, as a worker may be
    scraped by the local Prometheus), so no shipped target or campaign series."""
    return write_config(
        folder,
        uuid.uuid4().hex[:10],
        brands=BRANDS,
        alerts={"targets": []},
        campaigns={"brands": []},
        gauges="boards",  # as shipped: the boards' gauges come from each evaluation process
    )


def consumed(worker: Worker, settings: Settings) -> float:
    """Events a worker has read from its partitions so far (counted or not)."""
    topics = (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions)
    name = "socialpulse_events_consumed_total"
    return sum(value(worker.metrics_url, name, topic=t) or 0 for t in topics)


def counted(url: str, settings: Settings) -> float:
    topics = (settings.pipeline.topics.mentions, settings.pipeline.topics.interactions)
    return sum(value(url, "socialpulse_events_counted_total", topic=t) or 0 for t in topics)
