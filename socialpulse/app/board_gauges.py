"""The window gauges the boards read, computed every few seconds rather than at every scrape.

With ``metrics.gauges: boards`` the Grafana boards take every window they can from the running
totals (socialpulse.app.boards.from_totals); what is left (distinct counts, followers, share of
voice, average sentiment, customer care, the KPIs set against an alert rule) is read from
Redis: day windows of hundreds of buckets, HyperLogLogs, care sets. At 1,000 brands that read
is seconds of work, more than a scrape can take (Prometheus asks every 5 s) and, in the
worker's process, seconds the stream waits for the interpreter. So the alert evaluation process
(socialpulse.app.evaluator) computes them for the worker's own brands once per evaluation
grid (10 s), half-way between its rounds, in a daemon thread, and sends them with its report;
the worker's /metrics serves the last ones. The gauges left to this path move slowly (windows
of 15 minutes to a day), so a board loses nothing to a value up to one grid old, and the
evaluation rounds of the same process keep their turn (at 1,000 brands, with a computation
every 5 s at any time, rounds took 5.9 s where they took 4.4 s without, and with two workers
one went past its 10 s grid; once per grid, between rounds, 4.1 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis

from socialpulse.app.boards.specs import gauges_read
from socialpulse.app.settings import Settings
from socialpulse.core.exposition import ByBrand
from streams.metrics import WindowGauges

log = logging.getLogger(__name__)

# At least this many seconds from one computation's end to the next's start: the evaluation
# rounds of the same process get the interpreter between them.
GAUGES_PAUSE = 1.0


class BoardGauges:
    """The boards' window gauges of the brands ``brands()`` returns, computed by
    :meth:`refresh` (once per evaluation grid, between its rounds, once :meth:`start`-ed) and
    kept per brand (:attr:`latest`: None before the first computation)."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        brands: Callable[[], Sequence[str]],
    ):
        self.source = WindowGauges(settings, client, gauges_read(settings))
        self.brands = brands
        evaluation = settings.alerts.evaluation
        self.every = float(evaluation.every)
        # Half-way between the evaluation rounds, which start ``settle`` seconds past each
        # tick: the two take turns rather than sharing the interpreter.
        self.offset = evaluation.settle + evaluation.every / 2
        self.latest: ByBrand | None = None
        self.seconds = 0.0  # what the last computation took

    def refresh(self) -> ByBrand:
        """Compute the gauges of the brands now (none while Redis cannot be read: a board
        shows no data rather than old numbers as new) and keep them as :attr:`latest`."""
        started = time.monotonic()
        self.latest = ByBrand(self.source.families(list(self.brands())))
        self.seconds = time.monotonic() - started
        return self.latest

    def start(self) -> BoardGauges:
        """Refresh now, then once per evaluation grid, in a daemon thread."""
        threading.Thread(target=self._run, name="board-gauges", daemon=True).start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:  # a bug here must not stop the exports for good
                log.exception("metrics: computing the boards' window gauges failed")
            time.sleep(next_start(time.time(), self.every, self.offset))


def next_start(now: float, every: float, offset: float) -> float:
    """Seconds from ``now`` to the next computation: the next time ``offset`` seconds past a
    multiple of ``every`` (half-way between two evaluation rounds), at least GAUGES_PAUSE."""
    wait = (offset - now) % every
    return wait if wait >= GAUGES_PAUSE else wait + every


__all__ = ["GAUGES_PAUSE", "BoardGauges", "next_start"]
