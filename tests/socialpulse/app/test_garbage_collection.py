"""The worker's collector settings: what is alive is frozen, collections are rarer."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from socialpulse.app.garbage_collection import THRESHOLDS, tune_for_batches


class _Node:
    self: object = None


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_what_is_alive_is_frozen_and_collections_are_rarer(restored_collector: None) -> None:
    model = [[f"word{i}", float(i)] for i in range(1000)]  # a loaded model: long-lived
    # Garbage of the loading, in a cycle: collected before the freeze, not frozen for good.
    leftover = _Node()
    leftover.self = leftover
    gone = weakref.ref(leftover)
    del leftover
    assert gc.get_freeze_count() == 0
    tune_for_batches()
    assert gone() is None
    assert gc.get_threshold() == THRESHOLDS == (50_000, 20, 100)
    frozen = gc.get_freeze_count()
    assert frozen > len(model)  # its lists among what was frozen
    # Garbage made after it is still collected; what was frozen stays out of the collections.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
    assert gc.get_freeze_count() == frozen
