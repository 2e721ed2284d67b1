"""Consumer lag per partition: how many messages of each partition this worker owns are not
processed yet. A worker reports only the partitions assigned to it, so with N workers in the
group every partition is reported once (boards ``sum``/``max`` by partition)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Partition = tuple[str, int]  # (topic, partition)


def partition_lag(
    assigned: Collection[Partition],
    highwaters: Mapping[Partition, int],
    processed: Mapping[Partition, int],
    positions: Mapping[Partition, int],
) -> dict[Partition, int]:
    """Messages behind per assigned partition: the log end (highwater) less the next offset to
    process: after the last processed one, or the fetch position before any was processed.
    A partition whose highwater is not known has no value."""
    lag = {}
    for tp in assigned:
        end = highwaters.get(tp)
        if end is None:
            continue
        done = processed[tp] + 1 if tp in processed else positions.get(tp, end)
        lag[tp] = max(end - done, 0)
    return lag


class ConsumerLag(Collector):
    """Holds the last measured lag (replaced whole, so a scrape never sees half of it) and
    exports it as ``socialpulse_consumer_lag_messages``."""

    def __init__(self) -> None:
        self.processed: dict[Partition, int] = {}
        self.lag: dict[Partition, int] = {}

    def note_processed(self, topic: str, partition: int, offset: int) -> None:
        """Remember the highest offset of a partition whose effects are in Redis."""
        tp = (topic, partition)
        if offset > self.processed.get(tp, -1):
            self.processed[tp] = offset

    def forget(self, partitions: Collection[Partition]) -> None:
        """Drop partitions this worker no longer owns (after a rebalance)."""
        for tp in partitions:
            self.processed.pop(tp, None)
        self.lag = {tp: n for tp, n in self.lag.items() if tp not in partitions}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge sample per partition this worker owns."""
        family = GaugeMetricFamily(
            "socialpulse_consumer_lag_messages",
            "Messages of a partition this worker owns that it has not processed yet.",
            labels=["topic", "partition"],
        )
        for (topic, partition), n in sorted(self.lag.items()):
            family.add_metric([topic, str(partition)], n)
        yield family


__all__ = ["ConsumerLag", "partition_lag"]
