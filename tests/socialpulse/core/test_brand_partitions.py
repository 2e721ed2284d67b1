"""Which brands a worker exports: the partition Kafka's default partitioner gives a brand's key,
and the share of the brands that a worker's assigned partitions make its own."""

from __future__ import annotations

import pytest

from socialpulse.core.brand_partitions import OwnedBrands, brand_partition

# Kafka's own test vectors for its murmur2 (clients UtilsTest.testMurmur2), as signed ints: the
# Java client's default partitioner takes them to partition (hash & 0x7fffffff) % partitions.
KAFKA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize("partitions", [1, 6, 7, 64])
def test_a_brand_goes_to_the_partition_the_java_client_would_choose(partitions: int) -> None:
    for key, java_hash in KAFKA_MURMUR2.items():
        assert brand_partition(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


def test_a_topic_without_partitions_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least one partition, not 0"):
        brand_partition("acme", 0)


# The scale-out test's brands and their partitions of six (brand_partition; that producers put
# them there is checked on the real broker in tests/e2e/test_scale_out_e2e.py).
SIX = {"brand26": 0, "brand0": 1, "brand4": 2, "brand13": 3, "brand23": 4, "brand6": 5}


def test_every_brand_is_exported_until_partitions_are_assigned_then_only_its_own() -> None:
    brands = ["brand0", "brand13", "brand23", "brand26", "brand4", "brand6"]
    assert {b: brand_partition(b, 6) for b in brands} == SIX
    owned = OwnedBrands(brands)
    assert (owned.brands, owned.version) == (tuple(brands), 0)
    owned.assign([3, 1], 6)
    assert owned.brands == ("brand0", "brand13")  # in the configured order
    assert "brand0" in owned and "brand4" not in owned
    assert owned.version == 1
    owned.assign([1, 3], 6)  # the same share again: nothing to render anew
    assert owned.version == 1
    owned.assign([], 6)  # more workers than partitions: this one shows no brand
    assert (owned.brands, owned.version) == ((), 2)


def test_the_workers_of_a_group_export_each_brand_exactly_once() -> None:
    brands = [f"brand-{i}" for i in range(200)]
    workers = [OwnedBrands(brands) for _ in range(3)]
    for worker, partitions in zip(workers, [[0, 3, 5], [1, 4], [2]], strict=True):
        worker.assign(partitions, 6)
    shown = [b for worker in workers for b in worker.brands]
    assert sorted(shown) == sorted(brands)  # each once: none twice, none missing
    assert all(worker.brands for worker in workers)
