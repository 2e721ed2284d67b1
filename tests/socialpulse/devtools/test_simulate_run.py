"""simulate.run's wiring without Kafka: each kind to its topic, mentions at 30% of the rate,
snapshots every poll interval, scenarios announced."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from socialpulse.app.settings import load_settings
from socialpulse.core.paths import project_home
from socialpulse.devtools import simulate
from socialpulse.devtools.scenarios import Scenario


class Recorder:
    """Stands in for EventProducer: keeps what would be sent, by topic."""

    sent: list[tuple[str, dict[str, Any]]]

    def __init__(self, producer: object, envelope: int = 1) -> None:
        Recorder.sent = []

    def send(self, topic: str, event: dict[str, Any]) -> None:
        Recorder.sent.append((topic, event))

    def send_due(self) -> None:
        pass

    def close(self, timeout: float = 30) -> None:
        pass


def test_run_sends_mentions_interactions_and_snapshots_to_their_topics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(simulate, "kafka_producer", lambda *args: None)
    monkeypatch.setattr(simulate, "EventProducer", Recorder)
    settings = load_settings(project_home() / "config")
    topics = settings.pipeline.topics
    silent = Scenario("silent", "acme", "x", start=0)
    sent = simulate.run(
        settings, 20, 2.2, None, None, 0, 0, seed=3, scenario=silent, poll_every=1.0
    )
    by_topic = Counter(topic for topic, _ in Recorder.sent)
    assert sent == by_topic[topics.mentions] + by_topic[topics.interactions]
    assert set(by_topic) <= {topics.mentions, topics.interactions, topics.snapshots}
    # 6 mentions a second (30% of 20), a snapshot of every live post and ad a second.
    assert 8 <= by_topic[topics.mentions] <= 16
    snapshots = [e for t, e in Recorder.sent if t == topics.snapshots]
    objects = {e["object_id"] for e in snapshots}
    assert len(objects) > 40 and len(snapshots) >= 2 * len(objects)
    assert all("metrics" in e for e in snapshots)
    assert all(e.get("kind") is None for t, e in Recorder.sent if t == topics.mentions)
    assert "acme" not in {e["brand"] for _, e in Recorder.sent}
    out = capsys.readouterr().out
    assert "silent feed: no more events and snapshots of acme" in out
    assert f"sent {len(snapshots)} metric snapshots (a poll every 1s)" in out
