"""``socialpulse replay``: re-emit a recorded event file at its original pace or N times faster,
with event times shifted to now, for demos and drills.

The recording is JSON lines of SocialPulse events, mentions, interactions and snapshots (a
``type`` field, or inferred: see ingest.validation.event_type). Replayed ids get a suffix
unique to the run, so a drill can be replayed again and counted again; ``--keep-ids`` keeps
the ids (a second run then counts nothing twice). Conversation references (conversation_id,
reply_to) get the same suffix, so customer-care threads stay matched; so do snapshots'
objects, so a replayed object counts from zero again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.event_producer import EventProducer
from ingest.validation import REFERENCES, EventType, Rejected, event_topics, event_type
from socialpulse.core.config import TopicSettings


class RecordingError(ValueError):
    """The recording cannot be replayed (names the file, the line and the problem)."""


@dataclass(frozen=True)
class Recorded:
    """One recorded event: its type, its time (epoch seconds) and its fields."""

    type: EventType
    ts: float
    body: dict[str, Any]


def load_recording(path: Path) -> list[Recorded]:
    """The recording's events in event-time order; RecordingError on a line that is not an
    event with a valid ts."""
    events = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                kind = event_type(item) if isinstance(item, dict) else None
                if kind is None or isinstance(kind, Rejected):
                    why = kind.detail if isinstance(kind, Rejected) else "not a JSON object"
                    raise ValueError(why)
                ts = datetime.fromisoformat(str(item["ts"]).replace("Z", "+00:00"))
                if ts.tzinfo is None:
                    raise ValueError("ts has no timezone")
            except (ValueError, KeyError) as exc:
                raise RecordingError(f"{path}:{number}: {exc}") from exc
            body = {k: v for k, v in item.items() if k != "type"}
            events.append(Recorded(kind, ts.timestamp(), body))
    if not events:
        raise RecordingError(f"{path}: no events to replay")
    return sorted(events, key=lambda e: e.ts)


def replayed(event: Recorded, when: float, suffix: str) -> dict[str, Any]:
    """The event as re-emitted at ``when``: ts set to it, references suffixed; a snapshot's
    ``published_at`` moved by as much as its ts and its object suffixed too, so the replayed
    object counts from zero again instead of against the totals of an earlier run."""
    body = dict(event.body)
    body["ts"] = datetime.fromtimestamp(when, UTC).isoformat()
    if event.type == "snapshot" and body.get("published_at"):
        try:
            published = datetime.fromisoformat(str(body["published_at"]).replace("Z", "+00:00"))
            body["published_at"] = (published + timedelta(seconds=when - event.ts)).isoformat()
        except ValueError:
            pass  # left as recorded: the worker dead-letters it, naming the field
    references = (*REFERENCES, "object_id") if event.type == "snapshot" else REFERENCES
    if suffix:
        for name in references:
            if body.get(name):
                body[name] = f"{body[name]}{suffix}"
    return body


def replay(
    events: list[Recorded],
    topics: TopicSettings,
    producer: EventProducer,
    speed: float = 1.0,
    keep_ids: bool = False,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Emit ``events`` with their recorded spacing divided by ``speed``, the first now; return
    how many were sent."""
    if speed <= 0:
        raise ValueError(f"speed must be above 0, not {speed:g}")
    topic = event_topics(topics)
    start, first = clock(), events[0].ts
    suffix = "" if keep_ids else f"-r{int(start)}"
    for sent, event in enumerate(events, 1):
        due = start + (event.ts - first) / speed
        wait = due - clock()
        if wait > 0:
            producer.send_due()
            sleep(wait)
        producer.send(topic[event.type], replayed(event, max(due, clock()), suffix))
        if progress:
            progress(sent, len(events))
    return len(events)
