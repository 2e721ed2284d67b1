"""The window gauges the boards read, computed every few seconds rather than at every scrape.

With ``metrics.gauges: boards`` the Grafana boards take every window they can from the running
totals (socialpulse.app.boards.from_totals); what is left (distinct counts, followers, share of
voice, average sentiment, customer care, the KPIs set against an alert rule) is read from
Redis: windows of a day summed from dozens of buckets, HyperLogLogs, care sets. At 1,000
brands that read is seconds of work, more than a scrape can take (Prometheus asks every 5 s)
and, in the worker's process, seconds the stream waits for the interpreter. So the alert
evaluation process (socialpulse.app.evaluator) computes them for the worker's own brands every
10 s, half-way between its evaluation rounds, in a daemon thread, and sends them with its
report; the worker's /metrics serves the last ones. The gauges left to this path move slowly
(windows of 15 minutes to a day), so a board loses nothing to a value up to 10 s old, and the
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
from prometheus_client import Counter

from socialpulse.app.boards.specs import gauges_read
from socialpulse.app.settings import Settings
from socialpulse.core.connections import REDIS_ERRORS
from socialpulse.core.exposition import ByBrand
from streams.metrics import WindowGauges

log = logging.getLogger(__name__)

# Seconds from one computation to the next (whatever alerts.evaluation.every is): what a board
# of 15-minute to one-day windows can be behind.
GAUGES_EVERY = 10.0
# At least this many seconds from one computation's end to the next's start: the evaluation
# rounds of the same process get the interpreter between them; also the retry after a failure.
GAUGES_PAUSE = 1.0

FAILURES = Counter(
    "socialpulse_board_gauges_failures_total",
    "Computations of the boards' window gauges that failed (Redis unreachable, or a fault: "
    "see the worker's log); the gauges are left out of /metrics until one succeeds.",
    registry=None,  # the evaluation process' own registry takes it (socialpulse.app.evaluator)
)


class BoardGauges:
    """The boards' window gauges of the brands ``brands()`` returns, computed by
    :meth:`refresh` (once :meth:`start`-ed: every GAUGES_EVERY seconds, half-way between the
    evaluation rounds, at once when the brands change, and GAUGES_PAUSE after a failure) and
    kept per brand (:attr:`latest`: None before the first computation, no family after a
    failed one: a board shows no data rather than old numbers as new)."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        brands: Callable[[], Sequence[str]],
    ):
        self.source = WindowGauges(settings, client, gauges_read(settings))
        self.brands = brands
        # Half-way between the evaluation rounds, which start ``settle`` seconds past each
        # tick of the 10 s grid: the two take turns rather than sharing the interpreter.
        self.offset = settings.alerts.evaluation.settle + GAUGES_EVERY / 2
        self.latest: ByBrand | None = None
        self.seconds = 0.0  # what the last computation took
        self._computed_for: tuple[str, ...] | None = None

    def refresh(self) -> ByBrand:
        """Compute the gauges of the brands now and keep them as :attr:`latest`; raises what
        reading Redis raised (then :attr:`latest` has no family)."""
        started = time.monotonic()
        brands = tuple(self.brands())
        try:
            self.latest = ByBrand(self.source.read(brands))
        except Exception:
            self.latest = ByBrand([])
            raise
        finally:
            self.seconds = time.monotonic() - started
        self._computed_for = brands
        return self.latest

    def start(self) -> BoardGauges:
        """Refresh now, then as the class says, in a daemon thread."""
        threading.Thread(target=self._run, name="board-gauges", daemon=True).start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
                wait = next_start(time.time(), GAUGES_EVERY, self.offset)
            except REDIS_ERRORS as exc:
                FAILURES.inc()
                log.warning("metrics: cannot read the boards' gauges from Redis: %s", exc)
                wait = GAUGES_PAUSE
            except Exception:  # a bug here must not stop the exports for good
                FAILURES.inc()
                log.exception("metrics: computing the boards' window gauges failed")
                wait = GAUGES_PAUSE
            self._wait(wait)

    def _wait(self, seconds: float) -> None:
        # Checked twice a second: a brand new to this worker gets its gauges at once.
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            time.sleep(min(0.5, max(until - time.monotonic(), 0)))
            if self._computed_for is not None and tuple(self.brands()) != self._computed_for:
                return


def next_start(now: float, every: float, offset: float) -> float:
    """Seconds from ``now`` to the next computation: the next time ``offset`` seconds past a
    multiple of ``every`` (half-way between two evaluation rounds), at least GAUGES_PAUSE."""
    wait = (offset - now) % every
    return wait if wait >= GAUGES_PAUSE else wait + every


__all__ = ["FAILURES", "GAUGES_EVERY", "GAUGES_PAUSE", "BoardGauges", "next_start"]
