"""Which configured brands a worker exports on /metrics: those of the Kafka partitions it owns.

Every brand-level value on /metrics is read from Redis, so every worker could export every
brand, and did: with N workers Prometheus stored each brand N times (at 1,000 brands, N times
100,000s of series) and each scrape read every brand from Redis. Now each brand has one
exporting worker, the one in the consumer group that holds the brand's partition of the
mentions topic: the partition that Kafka's default partitioner gives the brand id as key
(murmur2, as the Java client, kafka-python and aiokafka compute it), which is where a
producer keyed by brand puts the brand's events. The values stay exact whichever worker shows
them (they come from Redis), so the set only has to split the brands among the live workers:
a producer with another partitioner changes which worker counts an event, not what is shown.

Ownership changes at a rebalance: a worker takes its new set when it is assigned partitions,
not when they are revoked, so a rebalance among running workers shows a brand's running totals
on two workers for a moment (boards take ``max()`` across workers) rather than on none; what
the worker's alert evaluation process computes of it (its rule states, the boards' window
gauges) follows a few seconds later. A worker that stops or dies leaves its brands unshown
until the group gives its partitions to the others.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from kafka.partitioner.default import murmur2


def brand_partition(brand: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed by ``brand`` (UTF-8)
    on a topic of ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(brand.encode()) & 0x7FFFFFFF) % partitions


class OwnedBrands:
    """The configured brands this worker exports: all of them until :meth:`assign` is first
    called, then those whose partition it was assigned (thread-safe: read by the /metrics
    threads, written by the worker's event loop)."""

    def __init__(self, brand_ids: Sequence[str]):
        self.configured = tuple(brand_ids)
        # Readers take no lock: each attribute is replaced whole, _brands before _version, so
        # a reader that sees a new version sees its brands (the lock orders the writers).
        self._brands = self.configured
        self._version = 0
        self._lock = threading.Lock()

    @property
    def brands(self) -> tuple[str, ...]:
        """The brands to export now, in the configured order."""
        return self._brands

    @property
    def version(self) -> int:
        """Changes whenever :attr:`brands` does (for caches of what was rendered from it)."""
        return self._version

    def assign(self, partitions: Iterable[int], count: int) -> None:
        """This worker now holds ``partitions`` of the ``count`` partitions of the reference
        topic: export the brands keyed to them (none when it holds none)."""
        held = frozenset(partitions)
        brands = tuple(b for b in self.configured if brand_partition(b, count) in held)
        with self._lock:
            if brands != self._brands:
                self._brands = brands
                self._version += 1

    def __contains__(self, brand: object) -> bool:
        """Whether ``brand`` is exported here now."""
        return brand in self._brands
