"""Metric snapshots into increments (pure, no I/O): what one snapshot of an object adds to the
rolling counters, given what is known of the object.

A platform reports running totals (a post's impressions, likes, spend so far). What a window
counts is the growth between successive snapshots of the object, spread evenly over the time
between them (the platform does not say when within it the growth happened), so a poll every
15 minutes does not show as a spike in the 1-minute window at each poll.

The rules, each the answer to something real pollers do:

- the first snapshot of an object counts from zero at its publication time when it says it
  (``published_at``): a post found an hour after it went out counts that hour's growth; without
  a publication time it is a starting point and adds nothing (its totals may be months old);
- a snapshot older than the newest one seen changes nothing (out of order), and so does one
  equal to it (a duplicate, or a second poller reading the same totals);
- a total that goes down (an unlike, a platform removing spam views) is a correction: it is
  counted in ``snapshot_corrections`` and never as a negative increment; later growth counts
  only past the highest total seen, so the increments of an object add up to its highest
  total, as two pollers of the same object would agree;
- an object older than ``track_for`` (from its publication, or its first snapshot) is no longer
  followed: its snapshots are ``untracked`` and its state is gone, which bounds memory.

Amounts (spend, revenue) are handled in millionths, so splitting 41.20 over 15 pieces and
adding them back gives 41.20 exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from streams.counters import Add
from streams.counters import field as counter_field
from streams.events import SNAPSHOT_AMOUNTS, SNAPSHOT_METRICS, MetricSnapshot
from streams.windows import WindowPlan

# What a snapshot did: counted (some total grew, or one went down), started (first snapshot
# without a publication time), advanced (newer, nothing changed), unchanged (same time and
# totals, or older: out_of_order), untracked (past track_for).
Outcome = Literal["counted", "started", "advanced", "unchanged", "out_of_order", "untracked"]
# The counter a total that went down adds one to (per metric that went down).
CORRECTIONS = "snapshot_corrections"
# An increment is spread over at most this many pieces, on the finest grid that keeps it so.
MAX_PIECES = 30
_GRIDS = (10, 60, 300, 3600, 86400)
_MICRO = 1_000_000


def _units(metric: str, total: float) -> int:
    # Whole numbers for counts, millionths for money: increments are exact integers.
    return round(total * _MICRO) if metric in SNAPSHOT_AMOUNTS else int(total)


def _amount(metric: str, units: int) -> float:
    return units / _MICRO if metric in SNAPSHOT_AMOUNTS else float(units)


@dataclass(frozen=True)
class ObjectState:
    """What is kept of one object between its snapshots: the newest snapshot's time, when its
    tracking started (publication, or first snapshot), whether totals count from zero there,
    and the highest total seen per metric (in units: whole, or millionths for money)."""

    ts: float
    since: float
    from_zero: bool
    totals: dict[str, int] = field(default_factory=dict)
    # The newest snapshot's own totals where they are below the highest (after a decrease):
    # a total that goes down from these is another correction, one that rises is not.
    last: dict[str, int] = field(default_factory=dict)
    version: int = 0  # the store's write counter, for its compare-and-set

    def to_json(self) -> str:
        """The state as the store keeps it (version aside)."""
        return json.dumps(
            {
                "ts": self.ts,
                "since": self.since,
                "zero": self.from_zero,
                "totals": self.totals,
                "last": self.last,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_store(cls, raw: Mapping[str, str]) -> ObjectState | None:
        """The state from the store's hash (``v``: version, ``s``: JSON); None when absent or
        unreadable (a state that cannot be read is treated as new: nothing is double counted,
        as a new object without a publication time adds nothing)."""
        if not raw or "s" not in raw:
            return None
        try:
            data = json.loads(raw["s"])
            return cls(
                float(data["ts"]),
                float(data["since"]),
                bool(data["zero"]),
                {str(k): int(v) for k, v in dict(data["totals"]).items()},
                {str(k): int(v) for k, v in dict(data.get("last", {})).items()},
                int(raw.get("v", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Piece:
    """Part of a snapshot's increments, at one time slot: counter fields per platform, and per
    content item and campaign (streams.counters.dimension_fields)."""

    slot: int
    fields: tuple[Add, ...]
    dimension_fields: tuple[Add, ...]


@dataclass(frozen=True)
class Step:
    """What one snapshot does: its outcome, the state to write (None: write nothing), the
    pieces to count, and the increments and corrections by metric (for metrics and tests)."""

    outcome: Outcome
    state: ObjectState | None
    pieces: tuple[Piece, ...] = ()
    increments: dict[str, float] = field(default_factory=dict)
    corrections: tuple[str, ...] = ()


def step(
    state: ObjectState | None,
    snapshot: MetricSnapshot,
    plan: WindowPlan,
    track_for: int,
    now: float,
) -> Step:
    """What ``snapshot`` adds given the object's ``state`` (None: not seen, or forgotten)."""
    ts = snapshot.ts.timestamp()
    # A publication a little after the read (the platform's clock ahead) counts from the read.
    published = min(snapshot.published_at.timestamp(), ts) if snapshot.published_at else None
    since = state.since if state else (published if published is not None else ts)
    if ts - since > track_for or (published is not None and ts - published > track_for):
        return Step("untracked", None)
    totals = {m: _units(m, v) for m, v in snapshot.metrics.items()}
    if state is not None and ts < state.ts:
        return Step("out_of_order", None)
    if state is None and published is None:
        return Step("started", ObjectState(ts, ts, False, totals))
    previous = state.totals if state else {}
    from_zero = state.from_zero if state else True
    last_seen = state.last if state else {}
    grown: dict[str, int] = {}
    corrected: list[str] = []
    highest = dict(previous)
    below: dict[str, int] = {}
    for metric, total in totals.items():
        before = previous.get(metric)
        if before is None:
            # A metric this object had not reported: from zero if its totals count from
            # publication, else a starting point of its own.
            before = 0 if from_zero else total
        if total > before:
            grown[metric] = total - before
        elif total < last_seen.get(metric, before):
            corrected.append(metric)
        if total < before:
            below[metric] = total
        highest[metric] = max(before, total)
    start = state.ts if state else since
    new_state = ObjectState(ts, since, from_zero, highest, below, state.version if state else 0)
    if not grown and not corrected:
        if state is not None and ts == state.ts and below == state.last:
            return Step("unchanged", None)
        return Step("advanced", new_state)
    increments = {m: _amount(m, n) for m, n in grown.items()}
    pieces = _pieces(snapshot, grown, corrected, start, ts, plan, now)
    return Step("counted", new_state, pieces, increments, tuple(corrected))


def _pieces(
    snapshot: MetricSnapshot,
    grown: Mapping[str, int],
    corrected: list[str],
    start: float,
    end: float,
    plan: WindowPlan,
    now: float,
) -> tuple[Piece, ...]:
    # Growth over (start, end], evenly; the part before any window still read is left out.
    longest = max(plan.windows)
    horizon = now - longest - plan.tier(longest)
    before, shares = spread(start, end, horizon)
    platform = snapshot.platform
    members = [f"|content:{snapshot.object_id}"]
    if snapshot.campaign:
        members.append(f"|campaign:{snapshot.campaign}")
    pieces: list[Piece] = []
    # Money is split in whole cents when the growth is whole cents (pieces of 1.47, not
    # 1.466667), else in millionths; counts in whole numbers.
    quantum = {
        m: 10_000 if m in SNAPSHOT_AMOUNTS and units % 10_000 == 0 else 1
        for m, units in grown.items()
    }
    done = {m: math.floor(units // quantum[m] * before + 0.5) for m, units in grown.items()}
    for slot, upto in shares:
        adds: list[tuple[str, float]] = []
        for metric, units in grown.items():
            # Cumulative rounding: the pieces add up to exactly the share of the growth.
            cumulative = math.floor(units // quantum[metric] * upto + 0.5)
            part, done[metric] = cumulative - done[metric], cumulative
            if part:
                adds.append((SNAPSHOT_METRICS[metric], _amount(metric, part * quantum[metric])))
        if not adds:
            continue
        pieces.append(
            Piece(
                slot,
                tuple((counter_field(c, platform), a) for c, a in adds),
                tuple((c + m, a) for m in members for c, a in adds),
            )
        )
    if corrected and end > horizon:
        slot = int(end) - int(end) % min(plan.tiers)
        corrections = ((counter_field(CORRECTIONS, platform), float(len(corrected))),)
        pieces.append(Piece(slot, corrections, ()))
    return tuple(pieces)


def spread(start: float, end: float, horizon: float) -> tuple[float, list[tuple[int, float]]]:
    """How an increment over (start, end] is laid out: the share of it before ``horizon``
    (read by no window, so not written), and the slots from there with the cumulative share
    up to the end of each; evenly over the interval, on the finest grid of at most MAX_PIECES
    slots. A zero-length interval is all at ``end``."""
    if end <= horizon:
        return 1.0, []
    if end - start <= 0:
        return 0.0, [(int(end), 1.0)]
    first = max(start, horizon)
    grid = next(g for g in _GRIDS if (end - first) / g < MAX_PIECES - 1 or g == _GRIDS[-1])
    slots: list[tuple[int, float]] = []
    slot = int(first) - int(first) % grid
    while slot <= end:
        upto = min(slot + grid, end)
        if upto > first:
            slots.append((slot, (upto - start) / (end - start)))
        slot += grid
    return (first - start) / (end - start), slots
