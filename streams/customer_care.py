"""Customer-care response times: inbound messages that need a reply are matched with the
brand's first reply on the same conversation, in Redis, exactly once (in the brand's batch
call, streams.store.count_script).

Keys (all under the brand's hash tag, like the counters):

- ``care-seen:<minute>``: ids of care events already applied (a redelivery changes nothing)
- ``care:waiting:<platform>``: sorted set, conversation -> event time of its first unanswered
  inbound message; the backlog, and how long its oldest message has waited
- ``care:platforms``: platforms that have had a waiting conversation
- ``rt<tier>:<bucket start>:<platform>``: sorted set of the bucket's responses, scored by
  seconds from inbound to the brand's reply; a window's median and p90 are read from the union
  of its buckets, so they are exact, not estimated from a histogram
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# A conversation nobody answered for this long leaves the backlog (and its key expires).
WAITING_KEPT = 30 * 86400


def response_quantiles(seconds: Sequence[float]) -> dict[str, float]:
    """Median and p90 (nearest rank) of response times; empty when there were no responses."""
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {
        "response_time_median_seconds": float(statistics.median(ordered)),
        "response_time_p90_seconds": ordered[math.ceil(0.9 * len(ordered)) - 1],
    }


def backlog(waiting: int, oldest: float | None, now: float) -> dict[str, float]:
    """Unanswered conversations and how long the oldest has waited (0 when none waits)."""
    age = max(0.0, now - oldest) if oldest is not None else 0.0
    return {"unanswered": waiting, "oldest_unanswered_seconds": age if waiting else 0.0}
