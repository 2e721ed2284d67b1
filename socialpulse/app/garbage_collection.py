"""The worker's cyclic garbage collector, set for a heap of long-lived models and short batches.

Why: the sentiment models (VADER's lexicon, SnowNLP's, the emoji table) are some 200,000
objects that live as long as the worker, and a batch is tens of thousands of short-lived ones
(decoded events, their fields, the count script's arguments). With CPython's defaults a
collection runs every 700 allocations, and the oldest generation's collections walk the
models every time. In `socialpulse bench throughput` (2026-12-07, one event per Kafka message)
the worker spent 106-118 us of CPU an event on the defaults (four runs) and 67-87 us with the
models frozen (four runs); the produce-to-visible p99 was 1.5-1.7 s on the defaults (three
runs) and 0.61-0.65 s with the thresholds below (three runs; a full collection is a pause of
the event loop).

So, once the models are loaded: :func:`gc.freeze` moves everything alive into a generation the
collector never walks (the models, the settings, the imported modules), and the first
generation is collected every ``FIRST_GENERATION`` allocations instead of 700. Reference
counting still frees what is not in a cycle at once; cycles wait a little longer.
"""

from __future__ import annotations

import gc

# Allocations between collections of the youngest generation, and collections of each
# generation between those of the next (CPython's defaults: 700, 10, 10).
FIRST_GENERATION = 50_000
THRESHOLDS = (FIRST_GENERATION, 20, 100)


def tune_for_batches() -> None:
    """Freeze what is alive now (call it once the long-lived state is loaded) and collect
    less often (THRESHOLDS)."""
    gc.collect()  # what is garbage already is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


__all__ = ["FIRST_GENERATION", "THRESHOLDS", "tune_for_batches"]
