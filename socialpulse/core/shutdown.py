"""A bound on how long stopping takes: whatever Kafka, Redis or Slack are doing, a process told
to stop (SIGTERM, Ctrl-C) ends within :data:`STOP_WITHIN` seconds.

A graceful stop can hang on a peer that has gone away (a Kafka consumer's final commit to a
broker that no longer answers, a flush to a producer that cannot deliver). Ending the process
then is safe by design: offsets are committed only after their events are counted (or
dead-lettered), so whatever was in progress is delivered again and counted once by id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STOP_WITHIN = 10.0  # seconds from the signal to the end of the process
_armed = threading.Event()


def end_within(
    seconds: float, what: str, code: int = 0, last: Callable[[], None] | None = None
) -> None:
    """Make sure the process ends ``seconds`` from now: if the graceful stop has not finished
    by then, a daemon thread calls ``last`` (e.g. a restart that replaces the process, or the
    removal of a file), then ends it with ``os._exit(code)``. Only the first call counts."""
    if _armed.is_set():
        return
    _armed.set()
    deadline = time.monotonic() + seconds

    def watch() -> None:
        time.sleep(max(deadline - time.monotonic(), 0.0))
        log.warning("%s: still stopping after %.0f s; ending the process now", what, seconds)
        for stream in (sys.stdout, sys.stderr):
            # A closed stream must not keep the process alive.
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        if last is not None:
            try:
                last()
            except Exception as exc:  # ending is what is left to do, whatever went wrong
                log.warning("%s: %s before ending: %s", what, last, exc)
        os._exit(code)

    threading.Thread(target=watch, name="stop-deadline", daemon=True).start()


__all__ = ["STOP_WITHIN", "end_within"]
