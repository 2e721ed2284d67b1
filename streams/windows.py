"""Event-time bucket maths for rolling windows (pure functions, no I/O).

A rolling window of W seconds ending now is the sum of the fixed buckets of B seconds whose
start lies in (now - W, now]: with 10 s buckets, "the last 5 minutes" is the 30 newest buckets,
the current (partial) one included.
"""

from __future__ import annotations

from datetime import datetime


def bucket_start(ts: datetime | float, bucket_seconds: int) -> int:
    """Unix second at which the bucket holding ``ts`` starts."""
    epoch = int(ts.timestamp() if isinstance(ts, datetime) else ts)
    return epoch - epoch % bucket_seconds


def window_buckets(now: float, window_seconds: int, bucket_seconds: int) -> list[int]:
    """Starts of the buckets that make up the window ending at ``now``, newest first."""
    newest = bucket_start(now, bucket_seconds)
    count = window_seconds // bucket_seconds
    return [newest - i * bucket_seconds for i in range(count)]


def bucket_ttl(longest_window: int, bucket_seconds: int) -> int:
    """Seconds a bucket key must live: long enough for the longest window to still read it,
    plus one bucket of slack for a reader that straddles a bucket boundary."""
    return longest_window + 2 * bucket_seconds
