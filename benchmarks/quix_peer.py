"""The peer of ``socialpulse bench throughput --peer``: a Quix Streams application doing work
comparable to a SocialPulse worker's, on the same topics in the same run.

Per Kafka message (one event each): decode the JSON, score the text with VADER when a mention
comes without a sentiment, then per brand (the message key) count events by platform and
sentiment in tumbling windows of 10 s, 1 min and 5 min, kept in Quix Streams' RocksDB state
with its changelog topics (its exactly-restorable equivalent of our Redis buckets).

It stops after ``--count`` messages and prints one JSON line: messages, seconds from the first
message to the last, and messages/s. Run by the benchmark, not by hand::

    python benchmarks/quix_peer.py --broker 127.0.0.1:9092 --group g --count 100000 \\
        --state-dir /tmp/quix-state mentions-topic interactions-topic
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from typing import Any

from quixstreams import Application
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

WINDOWS_S = (10, 60, 300)


def main() -> None:
    """Run the peer until ``--count`` messages are processed; print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()

    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        use_changelog_topics=True,
    )
    vader = SentimentIntensityAnalyzer()
    progress = {"seen": 0, "first": 0.0, "last": 0.0, "last_wall": 0.0}

    def score(event: dict[str, Any]) -> dict[str, Any]:
        if "kind" not in event and not event.get("sentiment"):
            compound = vader.polarity_scores(str(event.get("text") or ""))["compound"]
            event["sentiment"] = (
                "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
            )
        return event

    def seen(_: dict[str, Any]) -> None:
        now = time.perf_counter()
        if not progress["seen"]:
            progress["first"] = now
        progress["seen"] += 1
        progress["last"] = now
        progress["last_wall"] = time.time()
        if progress["seen"] >= args.count:
            app.stop()

    def count(totals: dict[str, int], event: dict[str, Any]) -> dict[str, int]:
        what = event.get("kind") or event.get("sentiment") or "mention"
        name = f"{event.get('platform')}|{what}"
        totals[name] = totals.get(name, 0) + 1
        return totals

    frames = [app.dataframe(app.topic(name, value_deserializer="json")) for name in args.topics]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    sdf = sdf.apply(score)
    for seconds in WINDOWS_S:
        # Each window is a branch of its own over the scored stream, with its own state store.
        sdf.tumbling_window(timedelta(seconds=seconds), name=f"counts_{seconds}s").reduce(
            reducer=count, initializer=lambda event: count({}, event)
        ).final()
    sdf.update(seen)
    app.run()
    took = progress["last"] - progress["first"]
    print(
        json.dumps(
            {
                "messages": progress["seen"],
                "seconds": round(took, 3),
                "messages_per_s": round(progress["seen"] / took) if took > 0 else None,
                # When the last message was processed, for a rate measured from the group's
                # assignment as the SocialPulse worker's (socialpulse/devtools/bench.py).
                "last_wall": progress["last_wall"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
